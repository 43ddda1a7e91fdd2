/**
 * The event log's ordered part as one PostgreSQL function (docs/decisions/0009-events-by-reference.md):
 * take the event-log lock, read the newest mfloor, refuse an append below it (SQLSTATE SKY01, which aborts
 * the transaction), insert the rows. The writer sends the call and the COMMIT as one protocol message,
 * so the lock is held for the call and the commit, never across the node's event loop.
 * Each statement of a VOLATILE PL/pgSQL function takes its own snapshot (READ COMMITTED), so the mfloor
 * read after the lock sees every append that committed before it.
 */
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`
    create or replace function skypush_append(p_lock bigint, p_rows jsonb, p_own bigint, p_floor bigint)
    returns table (head bigint, prev bigint)
    language plpgsql volatile as $fn$
    declare
      v_prev bigint;
    begin
      perform pg_advisory_xact_lock(p_lock);
      v_prev := coalesce((select e.mfloor from events e order by e.seq desc limit 1), 0);
      if p_own is not null and p_own < v_prev then
        -- Aborts the transaction: a COMMIT queued behind this call then rolls it back.
        raise exception 'event log ordering conflict' using errcode = 'SKY01';
      end if;
      return query
        with ins as (
          insert into events (user_id, type, data, message_id, mfloor, created_at)
          select r.user_id, r.type, r.data, r.message_id, greatest(v_prev, p_floor), r.created_at
          from jsonb_to_recordset(p_rows)
            as r(ord integer, user_id bigint, type text, data text, message_id bigint, created_at bigint)
          order by r.ord
          returning events.seq)
        select max(ins.seq)::bigint, v_prev from ins;
    end
    $fn$`.execute(db);
}

export async function down(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`drop function if exists skypush_append(bigint, jsonb, bigint, bigint)`.execute(db);
}
