/**
 * Login lockout shared by every node through PostgreSQL, for a cluster without Redis: the same rules
 * as login-guard.redis.ts, on top of each node's own guard (login-guard.ts), which answers alone when
 * the database does not answer in time.
 *
 * One row per (account, address) pair in `login_failures`, keyed by a hash (no username or address in
 * clear): the failure count and when it is forgotten, the lock's end, and the attempts in flight (a
 * JSON object, attempt id → deadline, at most `maxFailures` of them). Admitting an attempt is one
 * upsert, atomic because it locks the pair's row: it adds the attempt only if the pair is not locked
 * and its failures plus live attempts are under the limit. Times are the database's, so nodes' clocks
 * do not matter. Expired rows are deleted by housekeeping (pruneLoginFailures).
 */
import { createHash, randomBytes } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';
import type { Logger } from 'pino';
import { IN_FLIGHT_TTL_MS } from './login-guard.redis.ts';
import {
  admitted,
  createLoginGuard,
  FAILURE_MEMORY_MS,
  IN_FLIGHT_RETRY_SEC,
  pairKey,
  type Admission,
  type AttemptOutcome,
  type LoginGuard,
  type LoginGuardOptions,
  viaSharedStore,
  type SharedStore,
} from './login-guard.ts';

/** Anything a Kysely raw query runs on: the store's Kysely (a structural type). */
type SqlExecutor = Parameters<RawBuilder<unknown>['execute']>[0];

/** Database calls slower than this count as the database being away: login must not hang on it. */
const DB_TIMEOUT_MS = 500;
/** Rows one housekeeping round deletes at most. */
export const PRUNE_BATCH = 10_000;

/** The database's clock in unix milliseconds, read once per statement through the CTE `t`. */
const DB_NOW_MS = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;
const NOW = sql`(select now from t)`;
/** The pair's attempts whose deadline has not passed, as a JSON object. */
const LIVE_ATTEMPTS = sql`(select coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)
  from jsonb_each(g.attempts) as e where (e.value)::bigint > ${NOW})`;
const LIVE_ATTEMPT_COUNT = sql`(select count(*) from jsonb_each(g.attempts) as e where (e.value)::bigint > ${NOW})`;
/** The pair's failures, or 0 once they are forgotten. */
const LIVE_FAILURES = sql`(case when g.failures_until > ${NOW} then g.failures else 0 end)`;

export interface PgLoginGuardOptions extends LoginGuardOptions {
  db: SqlExecutor;
  logger: Logger;
}

/** One shared guard: its options, this node's own guard, and its store (whether it was last seen away). */
interface Shared {
  opts: PgLoginGuardOptions;
  local: LoginGuard;
  store: SharedStore;
}

const pairHash = (u: string, ip: string) => createHash('sha256').update(pairKey(u, ip)).digest('hex');

/** Runs one call to PostgreSQL; undefined (logged once per outage) when it fails or takes too long. */
function shared<T>(g: Shared, op: () => Promise<T>): Promise<T | undefined> {
  return viaSharedStore(g.store, op);
}

/** Adds the attempt to the pair unless it is locked or at its limit; true when admitted. */
async function admit(db: SqlExecutor, pair: string, id: string, maxFailures: number): Promise<boolean> {
  const r = await sql`
    with t as (select ${DB_NOW_MS} as now)
    insert into login_failures as g (pair_hash, attempts)
    select ${pair}, jsonb_build_object(${id}::text, t.now + ${IN_FLIGHT_TTL_MS}::bigint) from t
    on conflict (pair_hash) do update set attempts = ${LIVE_ATTEMPTS} || excluded.attempts
    where g.locked_until <= ${NOW} and ${LIVE_FAILURES} + ${LIVE_ATTEMPT_COUNT} < ${maxFailures}::int
    returning 1 as admitted`.execute(db);
  return r.rows.length > 0;
}

/** Milliseconds the pair stays locked (0: not locked, it is at its limit with attempts in flight). */
async function lockRemainingMs(db: SqlExecutor, pair: string): Promise<number> {
  const r = await sql<{ ms: number }>`
    select greatest(locked_until - ${DB_NOW_MS}, 0) as ms from login_failures where pair_hash = ${pair}`.execute(
    db,
  );
  return Number(r.rows[0]?.ms ?? 0);
}

/**
 * Counts a failure and ends the attempt. Reaching the limit sets the lock and clears the count, so the
 * first failure after the lockout starts a new count (as in Redis and on one node).
 */
function recordFailure(g: Shared, pair: string, id: string) {
  const { maxFailures, lockoutSec } = g.opts;
  const lockMs = lockoutSec * 1000;
  const next = sql`(${LIVE_FAILURES} + 1)`;
  return sql`
    with t as (select ${DB_NOW_MS} as now)
    insert into login_failures as g (pair_hash, failures, failures_until, locked_until, attempts)
    select ${pair}, case when 1 >= ${maxFailures}::int then 0 else 1 end, t.now + ${FAILURE_MEMORY_MS}::bigint,
      case when 1 >= ${maxFailures}::int then t.now + ${lockMs}::bigint else 0 end, '{}'::jsonb from t
    on conflict (pair_hash) do update set
      attempts = g.attempts - ${id}::text,
      failures = case when ${next} >= ${maxFailures}::int then 0 else ${next} end,
      failures_until = ${NOW} + ${FAILURE_MEMORY_MS}::bigint,
      locked_until = case when ${next} >= ${maxFailures}::int then ${NOW} + ${lockMs}::bigint
        else g.locked_until end`.execute(g.opts.db);
}

function settle(g: Shared, pair: string, id: string, outcome: AttemptOutcome) {
  const { db } = g.opts;
  if (outcome === 'success')
    return shared(g, () =>
      sql`update login_failures set failures = 0, attempts = '{}'::jsonb where pair_hash = ${pair}`.execute(
        db,
      ),
    );
  if (outcome === 'unchecked')
    return shared(g, () =>
      sql`update login_failures set attempts = attempts - ${id}::text where pair_hash = ${pair}`.execute(db),
    );
  return shared(g, () => recordFailure(g, pair, id));
}

async function begin(g: Shared, u: string, ip: string): Promise<Admission> {
  const mine = await g.local.begin(u, ip);
  if (!mine.admitted) return mine;
  const { db, maxFailures } = g.opts;
  const pair = pairHash(u, ip);
  const id = randomBytes(8).toString('hex');
  const ok = await shared(g, () => admit(db, pair, id, maxFailures));
  if (ok === false) {
    await mine.attempt.end('unchecked');
    const ms = (await shared(g, () => lockRemainingMs(db, pair))) ?? 0;
    return { admitted: false, retryAfter: ms > 0 ? Math.ceil(ms / 1000) : IN_FLIGHT_RETRY_SEC };
  }
  // Admitted, also when the database did not answer (this node's count holds alone); an admission
  // that landed late is still removed by the attempt's end, which names the same id.
  return admitted((outcome) => Promise.all([mine.attempt.end(outcome), settle(g, pair, id, outcome)]));
}

/**
 * Lockout shared by every node through PostgreSQL (same semantics as createSharedLoginGuard). Every
 * attempt is also counted by this node's own guard, which answers alone while the database is away.
 */
export function createPgLoginGuard(opts: PgLoginGuardOptions): LoginGuard {
  const store: SharedStore = {
    name: 'PostgreSQL',
    timeoutMs: DB_TIMEOUT_MS,
    logger: opts.logger,
    away: false,
  };
  const g: Shared = { opts, local: createLoginGuard(opts), store };
  return { begin: (u, ip) => begin(g, u, ip) };
}

/**
 * Housekeeping: deletes up to PRUNE_BATCH pairs that hold nothing live any more (no lock, no failure
 * still remembered, no attempt before its deadline).
 */
export async function pruneLoginFailures(db: SqlExecutor): Promise<number> {
  const r = await sql`
    with t as (select ${DB_NOW_MS} as now)
    delete from login_failures where pair_hash in (
      select g.pair_hash from login_failures g
      where g.locked_until <= ${NOW} and (g.failures = 0 or g.failures_until <= ${NOW})
        and ${LIVE_ATTEMPT_COUNT} = 0
      limit ${PRUNE_BATCH}::int)`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}
