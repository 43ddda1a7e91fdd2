/**
 * Renders the inbox list from the model, keyed by message id: existing rows are updated in place (so a
 * focused button keeps focus), new rows are inserted where they belong, removed rows are dropped.
 * All message fields go into text nodes or attributes, never markup.
 */
import type { InboxItem } from '../../../client/index.ts';
import { formatTime, h, safeHref } from './dom.ts';
import { getLang, t } from './i18n.ts';
import type { InboxModel } from './inbox-model.ts';

export interface ListActions {
  markRead(id: number): void;
  remove(id: number): void;
}

export class InboxView {
  readonly #rows = new Map<number, { el: HTMLLIElement; item: InboxItem; lang: string }>();

  constructor(
    private readonly list: HTMLUListElement,
    private readonly empty: HTMLElement,
    private readonly more: HTMLButtonElement,
    private readonly actions: ListActions,
  ) {}

  render(model: InboxModel): void {
    const items = model.visible();
    const keep = new Set(items.map((m) => m.messageId));
    let refocus = -1;
    for (const [id, row] of this.#rows) {
      if (!keep.has(id)) {
        if (row.el.contains(document.activeElement)) refocus = [...this.list.children].indexOf(row.el);
        row.el.remove();
        this.#rows.delete(id);
      }
    }
    let cursor: ChildNode | null = this.list.firstChild;
    for (const item of items) {
      const el = this.#row(item);
      if (el !== cursor) this.list.insertBefore(el, cursor);
      else cursor = cursor.nextSibling;
    }
    if (refocus >= 0) {
      const row = this.list.children[Math.min(refocus, this.list.children.length - 1)];
      (row?.querySelector('button') ?? this.list).focus();
    }
    this.empty.hidden = !model.loaded || items.length > 0;
    this.empty.textContent = t('empty');
    this.more.hidden = model.nextCursor === null;
  }

  /** Forgets every row (after a language change, rows are rebuilt with the new strings). */
  reset(): void {
    this.#rows.clear();
    this.list.replaceChildren();
  }

  #row(item: InboxItem): HTMLLIElement {
    const old = this.#rows.get(item.messageId);
    const lang = getLang();
    if (old && old.item === item && old.lang === lang) return old.el;
    const el = this.#build(item);
    if (old) {
      const focused = old.el.contains(document.activeElement) ? document.activeElement?.className : undefined;
      old.el.replaceWith(el);
      if (focused !== undefined)
        (
          el.querySelector<HTMLElement>(`.${focused.split(' ')[0] || 'none'}`) ?? el.querySelector('button')
        )?.focus();
    }
    this.#rows.set(item.messageId, { el, item, lang });
    return el;
  }

  #build(m: InboxItem): HTMLLIElement {
    const titleId = `msg-${m.messageId}-title`;
    const href = safeHref(m.linkUrl);
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
        href
          ? h('a', { class: 'item-link', href, target: '_blank', rel: 'noopener noreferrer' }, t('openLink'))
          : null,
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
