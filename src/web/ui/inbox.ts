/**
 * The inbox page (/): sign in, then a live list fed by the SDK. The page loads the inbox over REST and
 * reloads it whenever the socket could not resume (first connect, RESYNC); live events are applied on
 * top, so nothing is missed between the REST snapshot and the socket.
 */
import { SkypushClient } from '../../../client/index.ts';
import { byId } from './dom.ts';
import { initI18n, onLangChange, t } from './i18n.ts';
import { InboxModel, type Tab } from './inbox-model.ts';
import { InboxView } from './inbox-view.ts';
import { mountLogin } from './login.ts';
import {
  canAskNotifications,
  chime,
  desktopNotify,
  logError,
  setSoundEnabled,
  soundEnabled,
  toast,
  type Level,
} from './notify.ts';
import {
  clearSession,
  errorText,
  isUnauthorized,
  loadSession,
  onSessionChange,
  rest,
  wsUrl,
  type Session,
} from './session.ts';
import { mountStatus } from './status.ts';

initI18n(byId<HTMLSelectElement>('lang'));
const toasts = byId('toasts');
const badge = byId('badge');
const bell = byId<HTMLButtonElement>('bell');
const list = byId<HTMLUListElement>('list');
const more = byId<HTMLButtonElement>('more');
const tabs: Record<Tab, HTMLButtonElement> = { unread: byId('tab-unread'), all: byId('tab-all') };
const sound = byId<HTMLInputElement>('sound');
const notifyButton = byId<HTMLButtonElement>('notify-perm');
const model = new InboxModel();
let unread = 0;

const client = new SkypushClient({
  url: wsUrl(),
  getTicket: async () => {
    try {
      return (await rest.ticket()).ticket;
    } catch (e) {
      if (isUnauthorized(e)) signOut(t('sessionExpired'));
      throw e;
    }
  },
  onResync: () => reload(),
});
// Failures the SDK survives (a ticket it could not get, a bad frame, a failed resync) are still failures.
client.on('error', (e) => logError('connection', e));
mountStatus(byId('status'), byId('status-live'), client);

const view = new InboxView(list, byId('empty'), more, {
  markRead: (id) =>
    act(async () => {
      const r = await rest.markRead(id);
      model.live((m) => m.markRead([id], r.readAt));
    }),
  remove: (id) =>
    act(async () => {
      await rest.remove(id);
      model.live((m) => m.remove(id));
    }),
});
const render = () => view.render(model);

function setBadge(n: number): void {
  unread = n;
  badge.textContent = String(n);
  badge.dataset['count'] = String(n);
  bell.setAttribute('aria-label', t('bell', { n }));
  document.title = n > 0 ? `(${n}) skypush` : 'skypush';
}

/** Runs an action, then renders; a failure is shown as a toast (or signs out on 401). Never rejects. */
function act(fn: () => Promise<void>): void {
  fn()
    .then(() => render())
    .catch((e: unknown) => {
      if (isUnauthorized(e)) return signOut(t('sessionExpired'));
      toast(toasts, t('actionFailed', { reason: errorText(e) }), '', 'error');
    });
}

/** Replaces the list with the first page of the current tab (live events in flight are kept). */
async function reload(): Promise<void> {
  const install = model.beginReload();
  const tab = model.tab;
  const page = await rest.inbox({ status: tab === 'unread' ? 'unread' : 'all', limit: 20 });
  if (tab === model.tab && install(page.items, page.nextCursor)) render();
  if (client.state !== 'connected') setBadge(await rest.unreadCount());
}

function selectTab(tab: Tab): void {
  model.tab = tab;
  for (const [name, el] of Object.entries(tabs)) {
    el.setAttribute('aria-selected', String(name === tab));
    el.tabIndex = name === tab ? 0 : -1;
  }
  view.reset();
  render();
  act(reload);
}

// ---- live events ------------------------------------------------------------------------------------

let missed = 0;
client.on('CONNECTED', (hello) => {
  if (!hello.resume?.ok) act(reload);
  missed = 0;
});
client.on('NEW_MESSAGE', (m, info) => {
  model.live((x) => x.upsertNew(m));
  render();
  if (info.replayed) {
    missed++;
    return;
  }
  toast(toasts, m.title, m.content, m.priority >= 5 ? 'warning' : 'info');
  desktopNotify(m.title, m.content, `skypush-${m.messageId}`);
  if (soundEnabled()) chime();
});
client.on('MESSAGE_BATCH', () => {
  if (missed > 0) toast(toasts, t('missed', { n: missed }));
  missed = 0;
});
client.on('MESSAGE_READ', (d) => {
  model.live((x) => x.markRead(d.messageIds, d.readAt));
  render();
});
client.on('MESSAGE_DELETED', (d) => {
  model.live((x) => x.remove(d.messageId));
  render();
});
client.on('UNREAD_COUNT', (d) => setBadge(d.count));
client.on('SYSTEM_NOTIFY', (d, info) => {
  if (info.replayed) return;
  const title = typeof d.title === 'string' && d.title ? d.title : t('systemNotice');
  const body = typeof d.content === 'string' ? d.content : '';
  const level: Level =
    d.level === 'warning' || d.level === 'error' || d.level === 'success' ? d.level : 'info';
  toast(toasts, title, body, level);
  desktopNotify(title, body, 'skypush-system');
});

// ---- controls -------------------------------------------------------------------------------------

for (const [name, el] of Object.entries(tabs) as Array<[Tab, HTMLButtonElement]>) {
  el.addEventListener('click', () => selectTab(name));
  el.addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowLeft' && ev.key !== 'ArrowRight') return;
    const other: Tab = name === 'unread' ? 'all' : 'unread';
    selectTab(other);
    tabs[other].focus();
  });
}
bell.addEventListener('click', () => {
  selectTab('unread');
  list.focus();
});
more.addEventListener('click', () =>
  act(async () => {
    if (model.nextCursor === null) return;
    const page = await rest.inbox({ status: model.tab, cursor: model.nextCursor, limit: 20 });
    model.addPage(page.items, page.nextCursor);
  }),
);
byId('read-all').addEventListener('click', () =>
  act(async () => {
    await rest.markAllRead();
    model.live((m) => m.markAllRead(new Date().toISOString()));
  }),
);
sound.checked = soundEnabled();
sound.addEventListener('change', () => {
  setSoundEnabled(sound.checked);
  if (sound.checked) chime();
});
notifyButton.hidden = !canAskNotifications();
notifyButton.addEventListener('click', () => {
  void Notification.requestPermission().then(() => (notifyButton.hidden = !canAskNotifications()));
});
onLangChange(() => {
  view.reset();
  render();
  setBadge(unread);
});

// ---- session --------------------------------------------------------------------------------------

const login = mountLogin(byId<HTMLFormElement>('login-form'), start);
byId('logout').addEventListener('click', () => {
  clearSession();
  signOut('');
});

function showSignedIn(on: boolean): void {
  byId('login-view').hidden = on;
  byId('inbox-view').hidden = !on;
  byId('logout').hidden = !on;
  bell.hidden = !on;
}

function start(s: Session): void {
  byId('who').textContent = s.user.displayName || s.user.username;
  showSignedIn(true);
  client.connect();
  act(reload);
}

function signOut(notice: string): void {
  client.disconnect();
  clearSession();
  model.items.clear();
  model.loaded = false;
  view.reset();
  setBadge(0);
  showSignedIn(false);
  login.notice(notice);
  login.focus();
}

onSessionChange((s) => {
  if (s && client.state === 'disconnected') start(s);
  if (!s && client.state !== 'disconnected') signOut('');
});

setBadge(0);
const session = loadSession();
if (session) start(session);
else signOut('');
