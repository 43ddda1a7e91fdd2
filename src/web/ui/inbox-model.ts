/**
 * The inbox as the page knows it: messages by id, the tab's page cursor, and a journal that keeps live
 * events that arrive while a REST reload is in flight, so the reload's older snapshot cannot undo them.
 */
import type { InboxItem, MessagePayload } from '../../../client/index.ts';

export type Tab = 'unread' | 'all';
type Op = (m: InboxModel) => void;

export class InboxModel {
  tab: Tab = 'unread';
  nextCursor: string | null = null;
  loaded = false;
  readonly items = new Map<number, InboxItem>();
  #reload = 0;
  #journal: Op[] | undefined;

  /** Messages to show, newest first. */
  visible(): InboxItem[] {
    return [...this.items.values()]
      .filter((m) => this.tab === 'all' || !m.isRead)
      .sort((a, b) => b.messageId - a.messageId);
  }

  /** Applies a live change now and again after a reload in flight lands. */
  live(op: Op): void {
    op(this);
    this.#journal?.push(op);
  }

  /** Starts a reload; returns a function that installs its result if no newer reload started since. */
  beginReload(): (items: InboxItem[], nextCursor: string | null) => boolean {
    const n = ++this.#reload;
    this.#journal = [];
    return (items, nextCursor) => {
      if (n !== this.#reload) return false;
      const journal = this.#journal ?? [];
      this.#journal = undefined;
      this.items.clear();
      this.addPage(items, nextCursor);
      for (const op of journal) op(this);
      this.loaded = true;
      return true;
    };
  }

  addPage(items: InboxItem[], nextCursor: string | null): void {
    for (const m of items) if (!this.items.has(m.messageId)) this.items.set(m.messageId, m);
    this.nextCursor = nextCursor;
  }

  upsertNew(p: MessagePayload): void {
    const old = this.items.get(p.messageId);
    this.items.set(p.messageId, {
      ...p,
      id: p.messageId,
      isRead: old?.isRead ?? false,
      readAt: old?.readAt ?? null,
    });
  }

  markRead(ids: readonly number[], readAt: string): void {
    for (const id of ids) {
      const m = this.items.get(id);
      if (m && !m.isRead) this.items.set(id, { ...m, isRead: true, readAt });
    }
  }

  markAllRead(readAt: string): void {
    this.markRead([...this.items.keys()], readAt);
  }

  remove(id: number): void {
    this.items.delete(id);
  }
}
