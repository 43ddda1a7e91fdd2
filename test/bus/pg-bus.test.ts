/**
 * The PostgreSQL bus against a real database: delivery to every node (the publisher's own included),
 * the events wake-up sent by the committing transaction (at commit, never on rollback), a LISTEN
 * connection terminated by the server or black-holed on the network, and the channel name's bounds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pino from 'pino';
import type { BusMessage } from '../../src/bus/bus.ts';
import { channelName, PgBus } from '../../src/bus/pg-bus.ts';
import { openStore, type Store } from '../../src/store/database.ts';
import { PG_ADMIN_URL, createPgDatabase } from '../helpers/app.ts';
import { freePort } from '../helpers/node-process.ts';
import { waitUntil } from '../helpers/realtime.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logger = pino({ level: 'silent' });

function pgStore(url: string): Store {
  return openStore({ url, kind: 'postgres', poolSize: 4, statementTimeoutMs: 5000, connectTimeoutMs: 1000 });
}

/** A bus and everything it heard. */
interface Node {
  bus: PgBus;
  heard: BusMessage[];
  reconnects: number;
}

describe('PostgreSQL bus', () => {
  let url: string;
  let drop: () => Promise<void>;
  let store: Store;
  const buses: PgBus[] = [];

  async function node(nodeId: string, o: { listenUrl?: string; probeIntervalMs?: number } = {}) {
    const bus = new PgBus({
      listenUrl: o.listenUrl ?? url,
      db: store.db,
      prefix: 'skypush-test:',
      nodeId,
      probeIntervalMs: o.probeIntervalMs ?? 60_000,
      connectTimeoutMs: 500,
      logger,
    });
    buses.push(bus);
    await bus.start();
    const n: Node = { bus, heard: [], reconnects: 0 };
    bus.subscribe((m) => n.heard.push(m));
    bus.onReconnect(() => n.reconnects++);
    return n;
  }
  const heardHead = (n: Node, head: number) => n.heard.some((m) => m.type === 'events' && m.head === head);

  before(async () => {
    ({ url, drop } = await createPgDatabase());
    store = pgStore(url);
  });
  after(async () => {
    for (const b of buses) await b.close();
    await store.close();
    await drop();
  });

  it('delivers a publish to every node, the publisher included, and drops nobody’s probes into handlers', async () => {
    const [a, b] = [await node('A'), await node('B')];
    await a.bus.publish({ type: 'user-disabled', origin: 'A', userId: 7 });
    await waitUntil(() => a.heard.length > 0 && b.heard.length > 0, 2000);
    for (const n of [a, b]) assert.deepEqual(n.heard, [{ type: 'user-disabled', origin: 'A', userId: 7 }]);
    await a.bus.publish({ type: 'probe', origin: 'B', id: 'not-ours' });
    await sleep(100);
    assert.equal(b.heard.length, 1, 'probes never reach subscribers');
  });

  it('sends the events wake-up at commit of the transaction that carries it, and never on rollback', async () => {
    const [a, b] = [await node('A2'), await node('B2')];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const committed = store.db.transaction().execute(async (trx) => {
      await a.bus.wakeInTransaction(trx, 101);
      await held;
    });
    await sleep(200);
    assert.ok(!heardHead(a, 101) && !heardHead(b, 101), 'nothing before commit');
    release();
    await committed;
    await waitUntil(() => heardHead(a, 101) && heardHead(b, 101), 2000);

    await store.db
      .transaction()
      .execute(async (trx) => {
        await a.bus.wakeInTransaction(trx, 102);
        throw new Error('roll back');
      })
      .catch(() => {});
    await a.bus.publish({ type: 'events', origin: 'A2', head: 103 });
    await waitUntil(() => heardHead(b, 103), 2000);
    assert.ok(!heardHead(a, 102) && !heardHead(b, 102), 'a rolled-back transaction woke no one');
  });

  it('reconnects after the server terminates the LISTEN connection, tells subscribers, and hears again', async () => {
    const [a, b] = [await node('A3'), await node('B3')];
    const pid = await b.bus.listenerPid();
    assert.ok(pid);
    await sql`select pg_terminate_backend(${pid})`.execute(store.db);
    await waitUntil(() => b.reconnects === 1, 3000);
    assert.notEqual(await b.bus.listenerPid(), pid, 'a new connection');
    await a.bus.publish({ type: 'events', origin: 'A3', head: 201 });
    await waitUntil(() => heardHead(b, 201), 2000);
  });

  it('notices a LISTEN connection that went silent (self-probe), replaces it once the path is back', async () => {
    const target = new URL(PG_ADMIN_URL);
    const proxy = new TcpProxy(await freePort(), {
      host: target.hostname,
      port: Number(target.port || 5432),
    });
    await proxy.open();
    const viaProxy = new URL(url);
    viaProxy.port = String(proxy.port);
    try {
      const a = await node('A4');
      const b = await node('B4', { listenUrl: viaProxy.toString(), probeIntervalMs: 100 });
      proxy.hold(); // the connection stays up; nothing the server sends gets through
      await waitUntil(() => b.bus.probeFailures >= 1, 3000);
      await a.bus.publish({ type: 'events', origin: 'A4', head: 301 });
      await sleep(200);
      assert.ok(!heardHead(b, 301), 'lost while the path was held');
      proxy.release();
      await waitUntil(() => b.reconnects >= 1, 5000);
      await a.bus.publish({ type: 'events', origin: 'A4', head: 302 });
      await waitUntil(() => heardHead(b, 302), 2000);
    } finally {
      proxy.release();
      await proxy.cut();
    }
  });

  it('refuses a message over NOTIFY’s limit, and keeps a long prefix within a channel name', async () => {
    const a = await node('A5');
    const huge = { type: 'probe', origin: 'x'.repeat(9000), id: '1' } as const;
    await assert.rejects(a.bus.publish(huge), /over NOTIFY's limit/);
    assert.equal(channelName('skypush:'), 'skypush:bus');
    const long = channelName('p'.repeat(100));
    assert.ok(Buffer.byteLength(long) <= 63, long);
    assert.notEqual(long, channelName('q'.repeat(100)));
  });
});
