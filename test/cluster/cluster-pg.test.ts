/**
 * The cluster suite (cluster-suite.ts) on PostgreSQL alone: no Redis URL at all, so the nodes wake
 * each other with LISTEN/NOTIFY and keep presence and the login lockout in the database. Here the
 * wake-up connections can be killed alone (pg_terminate_backend of this database's LISTEN sessions).
 */
import pg from 'pg';
import { clusterSuite } from './cluster-suite.ts';

/** Runs one query on the nodes' database. */
async function query<R extends pg.QueryResultRow>(url: string, text: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(text)).rows;
  } finally {
    await c.end();
  }
}

clusterSuite({
  name: 'PostgreSQL alone',
  env: () => ({}),
  async lockRecords(env) {
    const rows = await query<{ pair_hash: string; attempts: unknown; ms: string }>(
      env['SKYPUSH_DATABASE_URL'] as string,
      `select pair_hash, attempts, locked_until - (extract(epoch from clock_timestamp()) * 1000)::bigint as ms
       from login_failures where locked_until > 0`,
    );
    return {
      names: rows.map((r) => JSON.stringify(r)),
      lockMs: Math.max(0, ...rows.map((r) => Number(r.ms))),
    };
  },
  async killWakeUps(env) {
    const killed = await query<{ ok: boolean }>(
      env['SKYPUSH_DATABASE_URL'] as string,
      `select pg_terminate_backend(pid) as ok from pg_stat_activity
       where datname = current_database() and application_name = 'skypush-listen'`,
    );
    if (killed.length !== 3) throw new Error(`expected 3 LISTEN sessions, killed ${killed.length}`);
  },
  reconnectedLine: /postgres bus reconnected; re-reading the event log/,
});
