/**
 * The connection indicator: connected / connecting / reconnecting with a countdown / offline. The
 * element's `data-state` carries the same value for styling and tests.
 */
import type { SkypushClient } from '../../../client/index.ts';
import { onLangChange, t } from './i18n.ts';

type Shown = 'connected' | 'connecting' | 'reconnecting' | 'offline';

/**
 * `el` shows the state (and the countdown); `live`, a polite live region, announces only state changes so
 * screen readers are not read a countdown every second.
 */
export function mountStatus(el: HTMLElement, live: HTMLElement, client: SkypushClient): void {
  let retryAt = 0;
  let announced = '';
  let everConnected = false;
  let ticker: ReturnType<typeof setInterval> | undefined;

  const shown = (): Shown => {
    if (!navigator.onLine || client.state === 'disconnected') return 'offline';
    if (client.state === 'connected') return 'connected';
    return everConnected || retryAt > 0 ? 'reconnecting' : 'connecting';
  };

  const render = () => {
    const s = shown();
    el.dataset['state'] = s;
    const left = Math.ceil((retryAt - Date.now()) / 1000);
    el.textContent =
      s === 'connected'
        ? t('stateConnected')
        : s === 'offline'
          ? t('stateOffline')
          : s === 'connecting'
            ? t('stateConnecting')
            : left > 0
              ? t('stateReconnectingIn', { n: left })
              : t('stateReconnecting');
    const label = s === 'reconnecting' ? t('stateReconnecting') : el.textContent;
    if (label !== announced) live.textContent = announced = label;
    const counting = s === 'reconnecting' && left > 0;
    if (counting && !ticker) ticker = setInterval(render, 250);
    if (!counting && ticker) {
      clearInterval(ticker);
      ticker = undefined;
    }
  };

  client.on('state', (s) => {
    if (s === 'connected') {
      everConnected = true;
      retryAt = 0;
    }
    if (s === 'disconnected') retryAt = 0;
    render();
  });
  client.on('reconnecting', (r) => {
    retryAt = Date.now() + r.delayMs;
    render();
  });
  window.addEventListener('online', () => {
    if (client.state === 'connecting') client.connect(); // retry now instead of waiting out the backoff
    render();
  });
  window.addEventListener('offline', render);
  onLangChange(render);
  render();
}
