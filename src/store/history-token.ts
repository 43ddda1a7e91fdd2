/**
 * The history token: what names the history a PostgreSQL database holds, read from the server itself.
 * A restore, a point-in-time recovery or a failover copies every table (the cursor epoch in
 * skypush_meta included) but changes at least one of these parts:
 * - `system`: the cluster's system identifier (pg_control_system()): a new cluster, pg_upgrade;
 * - `database`: the current database's OID: a pg_dump/restore into a fresh database, a copy made with
 *   CREATE DATABASE … TEMPLATE;
 * - `table`: skypush_meta's own OID: a dump restored over the same database (pg_restore --clean) recreates
 *   the table that holds the epoch (no migration may ever drop and recreate it);
 * - `timeline`: the timeline WAL is written on: a PITR or a standby's promotion starts a new one.
 * A role that may not execute a part's function (managed services revoke some) skips that part; the
 * others still tell. SQLite has no such parts: a file restore is caught by the sidecar mark instead
 * (history-mark.ts). See docs/decisions/0013-history-epoch.md.
 */
import { sql, type Kysely } from 'kysely';
import type { Dialect } from './database.ts';

/** Part name → value. Missing parts are unknown, not different. */
export type HistoryToken = Readonly<Record<string, string>>;

/** How a token is kept in skypush_meta: `name=value` pairs in name order, `;`-separated. */
export function formatToken(token: HistoryToken): string {
  return Object.keys(token)
    .sort()
    .map((k) => `${k}=${token[k]}`)
    .join(';');
}

/** Reads a stored token; pairs that do not parse are ignored (an unknown part compares as unknown). */
export function parseToken(text: string | undefined): HistoryToken {
  const out: Record<string, string> = {};
  for (const pair of (text ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0) out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** The parts known on both sides whose values differ: non-empty means the history changed. */
export function changedParts(stored: HistoryToken, live: HistoryToken): string[] {
  return Object.keys(live).filter((k) => stored[k] !== undefined && stored[k] !== live[k]);
}

/**
 * What to store after a check: the live parts over the stored ones. A part the role cannot read today
 * keeps its stored value, so a restore made while it was unreadable is still caught once it is readable.
 */
export function mergeToken(stored: HistoryToken, live: HistoryToken): HistoryToken {
  return { ...stored, ...live };
}

/**
 * Errors that mean "this part cannot be read here" rather than "the database is unreachable":
 * insufficient_privilege, undefined_function, feature_not_supported, object_not_in_prerequisite_state
 * (pg_walfile_name during recovery). Anything else fails the whole check, which is retried.
 */
const UNREADABLE = new Set(['42501', '42883', '0A000', '55000']);

function unreadable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNREADABLE.has(code);
}

type Probe = (db: Kysely<unknown>) => Promise<string | undefined>;

async function scalar(db: Kysely<unknown>, query: ReturnType<typeof sql<{ v: unknown }>>) {
  const row = (await query.execute(db)).rows[0];
  return row?.v === undefined || row.v === null ? undefined : String(row.v);
}

/**
 * Each part, with the functions that can read it in order of preference. The timeline is read first
 * from the WAL file being written (current at once after a promotion), else from the last checkpoint
 * (which shows a promotion only once the checkpoint after it has completed).
 */
const PARTS: ReadonlyArray<{ name: string; probes: Probe[] }> = [
  {
    name: 'system',
    probes: [(db) => scalar(db, sql<{ v: unknown }>`select system_identifier as v from pg_control_system()`)],
  },
  {
    name: 'database',
    probes: [
      (db) =>
        scalar(db, sql<{ v: unknown }>`select oid as v from pg_database where datname = current_database()`),
    ],
  },
  {
    name: 'table',
    probes: [(db) => scalar(db, sql<{ v: unknown }>`select 'skypush_meta'::regclass::oid as v`)],
  },
  {
    name: 'timeline',
    probes: [
      async (db) => {
        const file = await scalar(db, sql<{ v: unknown }>`select pg_walfile_name(pg_current_wal_lsn()) as v`);
        return file === undefined ? undefined : String(parseInt(file.slice(0, 8), 16));
      },
      (db) => scalar(db, sql<{ v: unknown }>`select timeline_id as v from pg_control_checkpoint()`),
    ],
  },
];

/**
 * A reader of the live token. On SQLite it is always empty. A part no probe may read is left out and
 * reported once through `onUnreadable` (the app logs it at info: the check still works with the rest).
 */
export function liveTokenReader(
  db: Kysely<unknown>,
  dialect: Dialect,
  onUnreadable: (part: string, reason: string) => void,
): () => Promise<HistoryToken> {
  const reported = new Set<string>();
  return async () => {
    if (dialect !== 'postgres') return {};
    const token: Record<string, string> = {};
    for (const part of PARTS) {
      const value = await readPart(db, part.probes, (reason) => {
        if (reported.has(part.name)) return;
        reported.add(part.name);
        onUnreadable(part.name, reason);
      });
      if (value !== undefined) token[part.name] = value;
    }
    return token;
  };
}

async function readPart(
  db: Kysely<unknown>,
  probes: Probe[],
  onUnreadable: (reason: string) => void,
): Promise<string | undefined> {
  let reason = 'no value';
  for (const probe of probes) {
    try {
      const value = await probe(db);
      if (value !== undefined) return value;
    } catch (err) {
      if (!unreadable(err)) throw err;
      reason = (err as Error).message;
    }
  }
  onUnreadable(reason);
  return undefined;
}
