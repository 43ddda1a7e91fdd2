/** Ways to tell the user something arrived: an in-page toast, a sound, a desktop notification. */
import { h } from './dom.ts';

export type Level = 'info' | 'success' | 'warning' | 'error';
const TOAST_MS = 3000;
const SOUND_KEY = 'skypush.sound';

/**
 * Every failure the page shows the user is also written to the console: an error shown only on screen
 * would hide a bug from whoever reads the logs (and from the browser tests, which fail on console errors).
 */
export function logError(what: string, e?: unknown): void {
  // eslint-disable-next-line no-console -- the pages' one way to log; the browser tests watch it
  console.error(`skypush: ${what}`, ...(e === undefined ? [] : [e]));
}

/** Shows a toast in `container` for 3 s. Title and body are text, never markup. Error toasts are logged. */
export function toast(container: HTMLElement, title: string, body = '', level: Level = 'info'): HTMLElement {
  if (level === 'error') logError(body ? `${title}: ${body}` : title);
  const el = h(
    'div',
    { class: `toast toast-${level}`, role: level === 'error' ? 'alert' : 'status' },
    h('strong', { class: 'toast-title' }, title),
    body ? h('span', { class: 'toast-body' }, body) : null,
  );
  container.prepend(el);
  setTimeout(() => el.remove(), TOAST_MS);
  return el;
}

export function soundEnabled(): boolean {
  return localStorage.getItem(SOUND_KEY) === 'on';
}

export function setSoundEnabled(on: boolean): void {
  localStorage.setItem(SOUND_KEY, on ? 'on' : 'off');
}

let audio: AudioContext | undefined;

/** A short two-tone chime made with Web Audio (no file to fetch, works offline). */
export function chime(): void {
  try {
    audio ??= new AudioContext();
    const t0 = audio.currentTime;
    for (const [i, freq] of [880, 1320].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.15, t0 + i * 0.12);
      gain.gain.exponentialRampToValueAtTime(0.001, t0 + i * 0.12 + 0.25);
      osc.connect(gain).connect(audio.destination);
      osc.start(t0 + i * 0.12);
      osc.stop(t0 + i * 0.12 + 0.3);
    }
  } catch {
    // no audio device or autoplay blocked: sound is best effort
  }
}

export function canAskNotifications(): boolean {
  return 'Notification' in window && Notification.permission === 'default';
}

/** A desktop notification, only when permitted and the tab is not visible (tabs share `tag`). */
export function desktopNotify(title: string, body: string, tag: string): void {
  if (!('Notification' in window) || Notification.permission !== 'granted' || !document.hidden) return;
  try {
    new Notification(title, { body, tag });
  } catch {
    // some platforms only allow notifications from a service worker
  }
}
