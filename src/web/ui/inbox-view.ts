/**
 * Renders the inbox list from the model, keyed by message id: unchanged rows stay in place (so a focused
 * button keeps focus), changed rows are rebuilt (focus moves to the same control), new rows are inserted
 * where they belong, removed rows are dropped.
 * All message fields go into text nodes or attributes, never markup.
 */
import type { InboxItem } from '../../../client/index.ts';
import { formatTime, h } from './dom.ts';
import { getLang, t } from './i18n.ts';
import type { InboxModel } from './inbox-model.ts';
import { safeLink } from './link.ts';

export interface ListActions {
  markRead(id: number): void;
  remove(id: number): void;
}

interface Row {
  el: HTMLLIElement;
  item: InboxItem;
  lang: string;
}

/** Where focus was inside the list before a render: which row, where it stood, and on which control. */
interface Focus {
  id: number;
  index: number;
  el: HTMLElement;
  control: string;
}

export class InboxView {
  #rows = new Map<number, Row>();

  constructor(
    private readonly list: HTMLUListElement,
    private readonly empty: HTMLElement,
    private readonly more: HTMLButtonElement,
    private readonly actions: ListActions,
  ) {}

  /**
   * Reconciles the list with the model in two phases. First every row is decided (kept, or rebuilt
   * when its item or the language changed) and every element that leaves is removed, without moving
   * anything else. Then one pass over the wanted rows inserts each before a cursor that only ever
   * points at a child of the list: nothing detaches a node after the pass starts.
   */
  render(model: InboxModel): void {
    const items = model.visible();
    const focus = this.#focus();
    const lang = getLang();
    const next = new Map<number, Row>();
    for (const item of items) {
      const old = this.#rows.get(item.messageId);
      next.set(
        item.messageId,
        old && old.item === item && old.lang === lang ? old : { el: this.#build(item), item, lang },
      );
    }
    for (const [id, row] of this.#rows) if (next.get(id)?.el !== row.el) row.el.remove();
    let cursor: ChildNode | null = this.list.firstChild;
    for (const { el } of next.values()) {
      if (el === cursor) cursor = cursor.nextSibling;
      else this.list.insertBefore(el, cursor);
    }
    this.#rows = next;
    if (focus) this.#refocus(focus);
    this.empty.hidden = !model.loaded || items.length > 0;
    this.empty.textContent = t('empty');
    this.more.hidden = model.nextCursor === null;
  }

  /** Forgets every row (after a language change, rows are rebuilt with the new strings). */
  reset(): void {
    this.#rows.clear();
    this.list.replaceChildren();
  }

  #focus(): Focus | undefined {
    const el = document.activeElement;
    if (!(el instanceof HTMLElement) || !this.list.contains(el) || el === this.list) return undefined;
    const li = el.closest<HTMLLIElement>('li[data-id]');
    if (!li) return undefined;
    const index = [...this.list.children].indexOf(li);
    return { id: Number(li.dataset['id']), index, el, control: el.classList[0] ?? '' };
  }

  /**
   * Puts focus back after a render: on the same control if its row stayed, on the same kind of control
   * in a rebuilt row, else on the row that took the removed one's place (or the list when it is empty).
   */
  #refocus(f: Focus): void {
    if (document.activeElement === f.el) return;
    if (f.el.isConnected) return f.el.focus();
    const row =
      this.#rows.get(f.id)?.el ?? this.list.children[Math.min(f.index, this.list.children.length - 1)];
    const same = f.control ? row?.querySelector<HTMLElement>(`.${CSS.escape(f.control)}`) : null;
    (same ?? row?.querySelector('button') ?? this.list).focus();
  }

  /** A link that passes the rule opens in a new tab; any other is shown as plain text, never as a link. */
  #link(url: string | null): HTMLElement | null {
    if (!url) return null;
    const href = safeLink(url);
    return href
      ? h('a', { class: 'item-link', href, target: '_blank', rel: 'noopener noreferrer' }, t('openLink'))
      : h('p', { class: 'item-link-text', title: t('linkRefused') }, url);
  }

  #build(m: InboxItem): HTMLLIElement {
    const titleId = `msg-${m.messageId}-title`;
    const meta = [t('from', { name: m.senderName }), formatTime(m.createTime, getLang()), m.messageType];
    if (m.priority !== 1) meta.push(t('priority', { n: m.priority }));
    return h(
      'li',
      {
        class: `item${m.isRead ? '' : ' unread'}${m.priority >= 5 ? ' urgent' : ''}`,
        'data-id': m.messageId,
        'aria-labelledby': titleId,
      },
      h(
        'div',
        { class: 'item-main' },
        h(
          'h3',
          { class: 'item-title', id: titleId },
          m.isRead
            ? null
            : h(
                'span',
                { class: 'dot', title: t('unreadMark') },
                h('span', { class: 'sr-only' }, t('unreadMark')),
              ),
          h('span', { class: 'item-title-text' }, m.title),
        ),
        m.content ? h('p', { class: 'item-content' }, m.content) : null,
        h('p', { class: 'item-meta' }, meta.join(' · ')),
        this.#link(m.linkUrl),
      ),
      h(
        'div',
        { class: 'item-actions' },
        m.isRead
          ? null
          : h(
              'button',
              { type: 'button', class: 'mark-read', onClick: () => this.actions.markRead(m.messageId) },
              t('markRead'),
            ),
        h(
          'button',
          { type: 'button', class: 'delete danger', onClick: () => this.actions.remove(m.messageId) },
          t('delete'),
        ),
      ),
    );
  }
}
