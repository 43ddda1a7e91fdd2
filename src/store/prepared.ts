/**
 * Queries compiled once. Kysely builds an operation tree and compiles it to SQL on every call, which
 * costs more than running a simple statement on SQLite (a send runs ~10 statements; building them was
 * about a sixth of its CPU). A prepared query is built once per dialect with placeholders standing for its
 * inputs; each call only binds the inputs into the compiled parameter list.
 *
 *   const userById = prepared((db, p: { id: number }) =>
 *     db.selectFrom('users').selectAll().where('id', '=', p.id));
 *   const row = (await userById(db, { id: 7 })).rows[0];
 *
 * The builder may use an input only as a value of the query (`where(…, '=', p.id)`, `values({ x: p.x })`,
 * `eb.val(p.x)`): it sees stand-ins, not the real inputs, so it cannot branch on them, spread a list
 * (`in` lists have a length that changes the SQL) or compute with them. Nor can it spread the input
 * (`{ ...p }`): the stand-in has no keys, so every field would be lost; such a query is refused.
 */
import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';
import type { DB } from './schema.ts';

/** Runs a compiled read at once, or answers undefined (then the query goes through Kysely). */
type ReadNow = (query: CompiledQuery) => QueryResult<unknown> | undefined;
const readsNow = new WeakMap<Kysely<DB>, ReadNow>();

/**
 * Lets prepared reads on `db` itself (not its transactions or plugin-wrapped copies, which are other
 * instances) skip Kysely's executor when `readNow` can answer at once: on SQLite, while the one
 * connection is free (sqlite-driver.ts readNow). Kysely's nested async layers per statement were about
 * a sixth of the bytes a connect allocated (docs/BENCHMARKS.md).
 */
export function allowReadsNow(db: Kysely<DB>, readNow: ReadNow): void {
  readsNow.set(db, readNow);
}

/** Stands for an input in the compiled parameter list. */
class Slot {
  constructor(readonly key: string) {}
}

type Bound = { slot: string } | { value: unknown };

export type Prepared<I, R> = (db: Kysely<DB>, input: I) => Promise<QueryResult<R>>;

export function prepared<I extends Record<string, unknown>, R>(
  build: (db: Kysely<DB>, input: I) => Compilable<R>,
): Prepared<I, R> {
  // Keyed by the dialect's adapter, which a Kysely instance shares with its transactions: the SQL text
  // and placeholder style differ between SQLite and PostgreSQL, and a process (the tests) may use both.
  const compiled = new WeakMap<object, { query: CompiledQuery<R>; bind: Bound[] }>();
  const stand = new Proxy({} as I, { get: (_, key) => new Slot(String(key)) });

  return async (db, input) => {
    const adapter = db.getExecutor().adapter;
    let c = compiled.get(adapter);
    if (!c) {
      const query = build(db, stand).compile();
      const bind = query.parameters.map((p): Bound => (p instanceof Slot ? { slot: p.key } : { value: p }));
      if (bind.some((b) => 'value' in b && b.value === undefined))
        throw new Error(`prepared query binds an undefined value (a spread input?): ${query.sql}`);
      if (!bind.some((b) => 'slot' in b) && Object.keys(input).length > 0)
        throw new Error(`prepared query uses none of its inputs: ${query.sql}`);
      compiled.set(adapter, (c = { query, bind }));
    }
    const parameters = c.bind.map((b) => ('slot' in b ? input[b.slot] : b.value));
    const query = { ...c.query, parameters };
    return (readsNow.get(db)?.(query) as QueryResult<R> | undefined) ?? db.executeQuery<R>(query);
  };
}
