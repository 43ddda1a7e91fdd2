/** Store-level helpers for HTTP tests: row counts (to prove "nothing stored") and a recording bus. */
import type { Kysely } from 'kysely';
import type { Bus, BusMessage } from '../../src/bus/bus.ts';
import { createMemoryBus } from '../../src/bus/memory-bus.ts';
import type { DB } from '../../src/store/schema.ts';

export type TableName = 'users' | 'messages' | 'inbox' | 'events' | 'idempotency_keys';

const TABLES: readonly TableName[] = ['users', 'messages', 'inbox', 'events', 'idempotency_keys'];

/** Row count of every table a request could write. */
export async function rowCounts(db: Kysely<DB>): Promise<Record<TableName, number>> {
  const out = {} as Record<TableName, number>;
  for (const table of TABLES) {
    const r = await db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    out[table] = Number(r.n);
  }
  return out;
}

export interface Publish {
  msg: BusMessage;
  /** What `observe` saw when the publish happened (e.g. row counts read from outside the transaction). */
  observed: unknown;
}

export interface RecordingBus extends Bus {
  published: Publish[];
  /** Set once the app exists: called inside every publish, its result kept beside the message. */
  observe: ((msg: BusMessage) => Promise<unknown>) | undefined;
}

/** The in-process bus, recording every publish (and an observation made at that moment). */
export function createRecordingBus(): RecordingBus {
  const inner = createMemoryBus();
  const bus: RecordingBus = {
    published: [],
    observe: undefined,
    async publish(msg) {
      const observed = bus.observe ? await bus.observe(msg) : undefined;
      bus.published.push({ msg, observed });
      await inner.publish(msg);
    },
    subscribe: (h) => inner.subscribe(h),
    onReconnect: (h) => inner.onReconnect(h),
    close: () => inner.close(),
  };
  return bus;
}
