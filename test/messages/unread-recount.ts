/**
 * A full recount of every user's unread count from the tables, independent of the app's SQL: what the
 * unread counters (src/messages/counters.repository.ts) must equal. "Live" is a parameter: until the
 * expiry announcement (the counters' meaning) or until expiresAt (what the inbox list shows).
 */
import type { Kysely } from 'kysely';
import { parseExpiryCursor } from '../../src/messages/expiry.ts';
import { EXPIRY_CURSOR_KEY } from '../../src/store/migrate.ts';
import type { DB } from '../../src/store/schema.ts';

/** The tables as the recount reads them. */
export interface Snapshot {
  users: number[];
  messages: Map<number, { target: string; expiresAt: number | null }>;
  inbox: Array<{ user: number; message: number; read: boolean; deleted: boolean }>;
  counters: Map<number, { unreadDirect: number; seenAll: number }>;
  liveAll: number;
  position: [number, number];
}

/**
 * The tables in one snapshot (on PostgreSQL a REPEATABLE READ transaction): each node folds pending
 * counter changes on a timer, and a fold between reading the counters and reading the pending sends
 * would make a count look one short.
 */
export async function snapshot(db: Kysely<DB>, dialect: 'sqlite' | 'postgres'): Promise<Snapshot> {
  if (dialect === 'sqlite') return read(db);
  return db.transaction().setIsolationLevel('repeatable read').execute(read);
}

async function read(db: Kysely<DB>): Promise<Snapshot> {
  const users = (await db.selectFrom('users').select('id').orderBy('id').execute()).map((r) => Number(r.id));
  const messages = new Map(
    (await db.selectFrom('messages').select(['id', 'target_type', 'expires_at']).execute()).map((m) => [
      Number(m.id),
      { target: m.target_type, expiresAt: m.expires_at === null ? null : Number(m.expires_at) },
    ]),
  );
  const inbox = (await db.selectFrom('inbox').selectAll().execute()).map((r) => ({
    user: Number(r.user_id),
    message: Number(r.message_id),
    read: r.read_at !== null,
    deleted: r.deleted_at !== null,
  }));
  const counters = new Map(
    (await db.selectFrom('unread_counters').selectAll().execute()).map((c) => [
      Number(c.user_id),
      { unreadDirect: Number(c.unread_direct), seenAll: Number(c.seen_all) },
    ]),
  );
  // A pending send (PostgreSQL) counts +1 for each recipient past its folded_through until folded.
  const pending = await db
    .selectFrom('unread_pending as p')
    .innerJoin('inbox as i', 'i.message_id', 'p.message_id')
    .select(['i.user_id', 'p.folded_through'])
    .whereRef('i.user_id', '>', 'p.folded_through')
    .execute();
  for (const d of pending) {
    const c = counters.get(Number(d.user_id)) ?? { unreadDirect: 0, seenAll: 0 };
    counters.set(Number(d.user_id), { unreadDirect: c.unreadDirect + 1, seenAll: c.seenAll });
  }
  const totals = await db.selectFrom('inbox_totals').selectAll().execute();
  const meta = await db
    .selectFrom('skypush_meta')
    .select('value')
    .where('key', '=', EXPIRY_CURSOR_KEY)
    .execute();
  return {
    users,
    messages,
    inbox,
    counters,
    liveAll: Number(totals[0]?.live_all ?? NaN),
    position: parseExpiryCursor(meta[0]?.value),
  };
}

/**
 * Per user, the recount with a given idea of "live": unread direct messages (row neither read nor
 * deleted), and live send-to-all messages without a row for the user, split in its two parts.
 */
export function recount(s: Snapshot, live: (id: number) => boolean) {
  const liveAll = [...s.messages].filter(([id, m]) => m.target === 'all' && live(id)).map(([id]) => id);
  const out = new Map<number, { unreadDirect: number; seenAll: number; count: number }>();
  for (const u of s.users) {
    const rows = s.inbox.filter((r) => r.user === u && live(r.message));
    const unreadDirect = rows.filter(
      (r) => s.messages.get(r.message)?.target === 'user' && !r.read && !r.deleted,
    ).length;
    const seenAll = rows.filter((r) => s.messages.get(r.message)?.target === 'all').length;
    out.set(u, { unreadDirect, seenAll, count: unreadDirect + liveAll.length - seenAll });
  }
  return { liveAll: liveAll.length, perUser: out };
}

/** Live until announced: the announcer's position (expires_at, id) has not reached the message. */
export function announcedLive(s: Snapshot) {
  const [at, aid] = s.position;
  return (id: number) => {
    const e = s.messages.get(id)?.expiresAt ?? null;
    return e === null || e > at || (e === at && id > aid);
  };
}
