/**
 * The admin console (/admin): send a message to picked users or everyone, broadcast a SYSTEM_NOTIFY,
 * watch who is online (refreshed every few seconds while the tab is visible), manage users.
 */
import type { SendInput, SystemNotice } from '../../../client/index.ts';
import { byId, h } from './dom.ts';
import { initI18n, onLangChange, t } from './i18n.ts';
import { safeLink } from './link.ts';
import { mountLogin } from './login.ts';
import { logError, toast } from './notify.ts';
import {
  clearSession,
  errorText,
  isUnauthorized,
  loadSession,
  onSessionChange,
  rest,
  type Session,
} from './session.ts';
import { UsersPanel } from './admin-users.ts';

const ONLINE_REFRESH_MS = 3000;

initI18n(byId<HTMLSelectElement>('lang'));
const toasts = byId('toasts');
const onlineList = byId<HTMLUListElement>('online-list');
const onlineTitle = byId('online-title');
const users = new UsersPanel(byId('users-body'), byId('targets'), toasts, () => loadSession()?.user.id, [
  ...document.querySelectorAll<HTMLElement>('.more-users'),
]);
let onlineTimer: ReturnType<typeof setInterval> | undefined;
let onlineIds: number[] = [];

function field(form: HTMLFormElement, name: string): string {
  return (
    form.elements.namedItem(name) as HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement
  ).value.trim();
}

function report(el: HTMLElement, text: string, ok: boolean): void {
  el.textContent = text;
  el.className = ok ? 'result ok' : 'result error';
}

function guarded(result: HTMLElement, fn: () => Promise<string>): void {
  fn().then(
    (text) => report(result, text, true),
    (e: unknown) => {
      if (isUnauthorized(e)) return signOut(t('sessionExpired'));
      logError('action failed', e);
      report(result, t('actionFailed', { reason: errorText(e) }), false);
    },
  );
}

// ---- send -----------------------------------------------------------------------------------------

const sendForm = byId<HTMLFormElement>('send-form');
const targetsBox = byId<HTMLFieldSetElement>('targets-box');
const syncTargets = () => (targetsBox.disabled = field(sendForm, 'target') === 'all');
for (const radio of sendForm.querySelectorAll('input[name="target"]'))
  radio.addEventListener('change', syncTargets);
sendForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  guarded(byId('send-result'), async () => {
    const all = field(sendForm, 'target') === 'all';
    const targetIds = users.picked();
    if (!all && targetIds.length === 0) throw new Error(t('pickSomeone'));
    const link = field(sendForm, 'linkUrl');
    if (link && !safeLink(link)) throw new Error(t('badLink'));
    const input: SendInput = {
      title: field(sendForm, 'title'),
      content: field(sendForm, 'content'),
      messageType: field(sendForm, 'messageType') || 'notice',
      priority: Number(field(sendForm, 'priority')),
      targetType: all ? 'all' : 'user',
      ...(all ? {} : { targetIds }),
      ...(link && { linkUrl: link }),
    };
    const r = await rest.send(input, crypto.randomUUID());
    return t('sent', { n: r.recipients });
  });
});

// ---- broadcast ------------------------------------------------------------------------------------

const broadcastForm = byId<HTMLFormElement>('broadcast-form');
broadcastForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  guarded(byId('broadcast-result'), async () => {
    const data: SystemNotice = {
      title: field(broadcastForm, 'title'),
      content: field(broadcastForm, 'content'),
      level: field(broadcastForm, 'level') as SystemNotice['level'],
    };
    const r = await rest.broadcast(data);
    return t('broadcastSent', { n: r.recipients });
  });
});

// ---- finding users --------------------------------------------------------------------------------

// Two search boxes (the picker's and the table's) share one query.
const searches = [...document.querySelectorAll<HTMLInputElement>('.user-search')];
let searchTimer: ReturnType<typeof setTimeout> | undefined;
for (const box of searches) {
  box.addEventListener('input', () => {
    for (const other of searches) if (other !== box) other.value = box.value;
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      users.search(box.value).then(renderOnline, (e: unknown) => {
        if (isUnauthorized(e)) signOut(t('sessionExpired'));
        else toast(toasts, t('actionFailed', { reason: errorText(e) }), '', 'error');
      });
    }, 250);
  });
}

// ---- online users ---------------------------------------------------------------------------------

function renderOnline(): void {
  onlineTitle.textContent = t('onlineTitle', { n: onlineIds.length });
  onlineList.replaceChildren(
    ...(onlineIds.length === 0
      ? [h('li', { class: 'muted' }, t('nobodyOnline'))]
      : onlineIds.map((id) =>
          h(
            'li',
            { 'data-user-id': id },
            h('span', { class: 'online-dot', 'aria-hidden': 'true' }),
            ` ${users.nameOf(id) ?? ''} (#${id})`,
          ),
        )),
  );
}

async function refreshOnline(): Promise<void> {
  try {
    onlineIds = (await rest.onlineUsers()).users;
    users.setOnline(onlineIds);
    renderOnline();
  } catch (e) {
    // Not toasted: a server outage would toast every few seconds. Still logged.
    if (isUnauthorized(e)) signOut(t('sessionExpired'));
    else logError('online users', e);
  }
}

function pollOnline(on: boolean): void {
  if (onlineTimer) clearInterval(onlineTimer);
  onlineTimer = on ? setInterval(() => void refreshOnline(), ONLINE_REFRESH_MS) : undefined;
  if (on) void refreshOnline();
}
document.addEventListener('visibilitychange', () =>
  pollOnline(!document.hidden && byId('admin-view').hidden === false),
);

// ---- users ----------------------------------------------------------------------------------------

const createForm = byId<HTMLFormElement>('create-user-form');
createForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  guarded(byId('create-result'), async () => {
    await users.create(createForm);
    return '';
  });
});

// ---- session --------------------------------------------------------------------------------------

const login = mountLogin(byId<HTMLFormElement>('login-form'), start);
byId('logout').addEventListener('click', () => signOut(''));

function show(view: 'login' | 'denied' | 'admin'): void {
  byId('login-view').hidden = view !== 'login';
  byId('denied-view').hidden = view !== 'denied';
  byId('admin-view').hidden = view !== 'admin';
  byId('logout').hidden = view === 'login';
}

function start(s: Session): void {
  byId('who').textContent = s.user.displayName || s.user.username;
  if (s.user.role !== 'admin') return show('denied');
  show('admin');
  void users.load().then(renderOnline, (e: unknown) => {
    if (isUnauthorized(e)) signOut(t('sessionExpired'));
    else toast(toasts, t('actionFailed', { reason: errorText(e) }), '', 'error');
  });
  pollOnline(true);
}

function signOut(notice: string): void {
  clearSession();
  pollOnline(false);
  byId('who').textContent = '';
  show('login');
  login.notice(notice);
  login.focus();
}

onSessionChange((s) => (s ? start(s) : signOut('')));
onLangChange(() => {
  users.render();
  renderOnline();
});
syncTargets();
const session = loadSession();
if (session) start(session);
else signOut('');
