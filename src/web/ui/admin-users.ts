/**
 * Admin: the user table (create, change role, disable/enable) and the recipient picker it feeds. Both
 * show the users matching the search (the first LIST_MAX by id); picked users stay picked across searches.
 */
import type { Role, User } from '../../../client/index.ts';
import { h } from './dom.ts';
import { t } from './i18n.ts';
import { toast } from './notify.ts';
import { errorText, rest } from './session.ts';

/** At most this many users are listed at once: beyond it, the admin searches. */
export const LIST_MAX = 1000;

export class UsersPanel {
  users: User[] = [];
  online = new Set<number>();
  /** More users match than are listed. */
  truncated = false;
  #query = '';
  /** Bumped by each load: an older search answering late is ignored. */
  #loads = 0;
  #picked = new Map<number, User>();
  /** Names of every user seen, for the online list. */
  #names = new Map<number, string>();

  constructor(
    private readonly table: HTMLTableSectionElement,
    private readonly picker: HTMLElement,
    private readonly toasts: HTMLElement,
    private readonly selfId: () => number | undefined,
    /** Where "showing the first N" is said (under the table, under the picker). */
    private readonly moreNotes: readonly HTMLElement[] = [],
  ) {}

  /** Ids ticked in the recipient picker, whether or not the current search shows them. */
  picked(): number[] {
    return [...this.#picked.values()].filter((u) => !u.disabled).map((u) => u.id);
  }

  nameOf(id: number): string | undefined {
    return this.#names.get(id);
  }

  /** Lists the users matching `query` (username, display name or id; empty: everyone). */
  async search(query: string): Promise<void> {
    this.#query = query.trim();
    await this.load();
  }

  async load(): Promise<void> {
    const load = ++this.#loads;
    const all: User[] = [];
    let cursor: string | undefined;
    do {
      const page = await rest.users(cursor, 500, this.#query || undefined);
      if (load !== this.#loads) return;
      all.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor && all.length < LIST_MAX);
    this.users = all.slice(0, LIST_MAX);
    this.truncated = cursor !== undefined || all.length > LIST_MAX;
    for (const u of this.users) {
      this.#names.set(u.id, u.displayName || u.username);
      if (this.#picked.has(u.id)) this.#picked.set(u.id, u);
    }
    this.render();
  }

  async create(form: HTMLFormElement): Promise<void> {
    const value = (name: string) => (form.elements.namedItem(name) as HTMLInputElement).value.trim();
    const user = await rest.createUser({
      username: value('username'),
      role: value('role') as Role,
      ...(value('password') && { password: value('password') }),
      ...(value('displayName') && { displayName: value('displayName') }),
    });
    form.reset();
    toast(this.toasts, t('created', { name: user.username }), '', 'success');
    await this.load();
  }

  render(): void {
    this.table.replaceChildren(...this.users.map((u) => this.#row(u)));
    for (const note of this.moreNotes) {
      note.hidden = !this.truncated && this.users.length > 0;
      note.textContent = this.truncated ? t('moreUsers', { n: LIST_MAX }) : t('noUserFound');
    }
    // Picked users the search does not show come first, still ticked.
    const shown = new Set(this.users.map((u) => u.id));
    const pickedElsewhere = [...this.#picked.values()].filter((u) => !shown.has(u.id));
    this.picker.replaceChildren(
      ...[...pickedElsewhere, ...this.users]
        .filter((u) => !u.disabled)
        .map((u) =>
          h(
            'label',
            { class: 'pick', 'data-user-id': u.id },
            h('input', {
              type: 'checkbox',
              value: u.id,
              checked: this.#picked.has(u.id),
              'data-username': u.username,
              onChange: (ev: Event) => {
                if ((ev.target as HTMLInputElement).checked) this.#picked.set(u.id, u);
                else this.#picked.delete(u.id);
              },
            }),
            ` ${u.displayName || u.username} (#${u.id})`,
            h(
              'span',
              { class: 'online-dot', title: t('online'), hidden: !this.online.has(u.id) },
              h('span', { class: 'sr-only' }, t('online')),
            ),
          ),
        ),
    );
  }

  /** Updates the online marks in place (no re-render: the admin may be using the form). */
  setOnline(ids: readonly number[]): void {
    this.online = new Set(ids);
    for (const label of this.picker.querySelectorAll<HTMLElement>('[data-user-id]')) {
      const dot = label.querySelector<HTMLElement>('.online-dot');
      if (dot) dot.hidden = !this.online.has(Number(label.dataset['userId']));
    }
  }

  #row(u: User): HTMLTableRowElement {
    const self = u.id === this.selfId();
    const role = h(
      'select',
      { 'aria-label': t('roleOf', { name: u.username }), disabled: self },
      h('option', { value: 'user', selected: u.role === 'user' }, t('roleUser')),
      h('option', { value: 'admin', selected: u.role === 'admin' }, t('roleAdmin')),
    );
    role.addEventListener('change', () => void this.#patch(u, { role: role.value as Role }));
    return h(
      'tr',
      { 'data-user': u.username, class: u.disabled ? 'is-disabled' : null },
      h('td', {}, u.id),
      h('td', {}, u.username),
      h('td', {}, u.displayName),
      h('td', {}, role),
      h('td', { class: 'user-status' }, u.disabled ? t('disabled') : t('active')),
      h(
        'td',
        {},
        self
          ? null
          : h(
              'button',
              {
                type: 'button',
                class: u.disabled ? 'toggle' : 'toggle danger',
                onClick: () => void this.#patch(u, { disabled: !u.disabled }),
              },
              u.disabled ? t('enable') : t('disable'),
            ),
      ),
    );
  }

  async #patch(u: User, patch: { role?: Role; disabled?: boolean }): Promise<void> {
    try {
      await rest.patchUser(u.id, patch);
      toast(this.toasts, t('updated', { name: u.username }), '', 'success');
    } catch (e) {
      toast(this.toasts, t('actionFailed', { reason: errorText(e) }), '', 'error');
    }
    await this.load();
  }
}
