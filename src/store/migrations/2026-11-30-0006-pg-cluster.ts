/**
 * A cluster on PostgreSQL alone: cluster-wide presence (each node's lease and the users it holds) and the
 * shared login lockout, used when no Redis is configured (realtime/pg-presence.ts, auth/login-guard.pg.ts).
 * Created on SQLite too, where nothing uses them, so both dialects keep one schema.
 */
import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on today's schema types
type AnyDB = Kysely<any>;

export async function up(db: AnyDB, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('presence_nodes')
    .addColumn('node_id', 'text', (c) => c.primaryKey())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('presence_users')
    .addColumn('user_id', 'bigint', (c) => c.notNull())
    .addColumn('node_id', 'text', (c) => c.notNull().references('presence_nodes.node_id').onDelete('cascade'))
    .addPrimaryKeyConstraint('presence_users_pk', ['user_id', 'node_id'])
    .execute();
  await db.schema.createIndex('presence_users_node_id').on('presence_users').column('node_id').execute();

  await db.schema
    .createTable('login_failures')
    .addColumn('pair_hash', 'text', (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failures_until', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('attempts', dialect === 'postgres' ? 'jsonb' : 'text', (c) => c.notNull().defaultTo('{}'))
    .execute();
}

export async function down(db: AnyDB): Promise<void> {
  await db.schema.dropTable('login_failures').execute();
  await db.schema.dropTable('presence_users').execute();
  await db.schema.dropTable('presence_nodes').execute();
}
