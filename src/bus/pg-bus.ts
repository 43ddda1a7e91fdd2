/**
 * The PostgreSQL bus, for a cluster without Redis: one channel, `<prefix>bus` (channels are per
 * database already; the prefix keeps two clusters sharing a database apart), carrying the same small
 * wake-ups as the Redis bus (docs/decisions/0003-bus-is-a-wake-up.md, 0012-postgres-only-cluster.md).
 *
 * One dedicated connection of its own (never one of the pool's) LISTENs. The `events` wake-up is sent
 * by the committing transaction itself (`wakeInTransaction`, a pg_notify inside it): PostgreSQL
 * delivers it exactly at commit and never for a rolled-back transaction. Other messages are NOTIFYed
 * through the pool. NOTIFY is at-most-once for a listener that is not connected, so, as with Redis:
 * the hubs also poll the log, every reconnect of the LISTEN connection triggers a re-read, and a
 * periodic self-probe notices a connection that died without saying so and replaces it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Bus, BusHandler, BusMessage } from './bus.ts';

/** Anything a Kysely raw query runs on: the store's Kysely, or a transaction (a structural type). */
export type SqlExecutor = Parameters<RawBuilder<unknown>['execute']>[0];

export interface PgBusOptions {
  /** Where the LISTEN connection goes (a session of its own: not through a transaction-mode pooler). */
  listenUrl: string;
  /** The store's Kysely: NOTIFYs other than the in-transaction wake-up go through its pool. */
  db: SqlExecutor;
  prefix: string;
  nodeId: string;
  probeIntervalMs: number;
  connectTimeoutMs: number;
  logger: Logger;
}

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; ours are under 200. */
export const NOTIFY_MAX_BYTES = 7999;
/** PostgreSQL truncates identifiers (a LISTEN channel is one) beyond 63 bytes. */
const MAX_CHANNEL_BYTES = 63;

/** The channel for a key prefix: `<prefix>bus`, or a hash of it when that is too long to be a channel. */
export function channelName(prefix: string): string {
  const plain = `${prefix}bus`;
  if (Buffer.byteLength(plain) <= MAX_CHANNEL_BYTES) return plain;
  return `skypush_${createHash('sha256').update(prefix).digest('hex').slice(0, 32)}_bus`;
}

/** Backoff before the n-th reconnect attempt in a row (as the Redis bus's). */
const reconnectDelay = (n: number) => Math.min(50 * 2 ** n, 2000);

export class PgBus implements Bus {
  readonly channel: string;
  private client: pg.Client | undefined;
  /** The current client is connected and its LISTEN succeeded. */
  private listening = false;
  private everListened = false;
  private attempts = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  /** The probe published last; `sent` once its NOTIFY committed (only then is its absence news). */
  private outstandingProbe: { id: string; sent: boolean } | undefined;
  private readonly handlers = new Set<BusHandler>();
  private readonly reconnectHandlers = new Set<() => void>();
  private closed = false;
  /** Counts LISTEN connections the probe found dead; for diagnostics and tests. */
  probeFailures = 0;

  constructor(private readonly opts: PgBusOptions) {
    this.channel = channelName(opts.prefix);
  }

  /** Connects and LISTENs (start-up waits for it, so the first wake-ups are heard); rejects if it cannot. */
  async start(): Promise<void> {
    await this.connect();
    this.probeTimer = setInterval(() => void this.probe(), this.opts.probeIntervalMs);
    this.probeTimer.unref();
  }

  /** The backend pid of the LISTEN connection (tests terminate it to simulate a lost connection). */
  async listenerPid(): Promise<number | undefined> {
    if (!this.client || !this.listening) return undefined;
    const r = await this.client.query<{ pid: number }>('select pg_backend_pid() as pid');
    return r.rows[0]?.pid;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.opts.listenUrl,
      connectionTimeoutMillis: this.opts.connectTimeoutMs,
      keepAlive: true,
      application_name: 'skypush-listen',
    });
    this.client = client;
    client.on('notification', (n) => {
      if (n.channel === this.channel && n.payload !== undefined) this.onMessage(n.payload);
    });
    client.on('error', (err: Error) => {
      this.opts.logger.debug({ err: { message: err.message } }, 'postgres bus connection error');
      this.lost(client);
    });
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(this.channel)}`);
    } catch (err) {
      this.lost(client);
      throw err;
    }
    if (this.client !== client) return; // lost or closed meanwhile
    this.listening = true;
    this.attempts = 0;
    if (this.everListened) {
      this.opts.logger.info('postgres bus reconnected; re-reading the event log');
      for (const h of this.reconnectHandlers) h();
    }
    this.everListened = true;
  }

  /** The connection `client` is gone (or judged dead): drop it and, once we have listened, reconnect. */
  private lost(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.listening = false;
    client.end().catch(() => {});
    if (!this.closed && this.everListened) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer !== undefined) return;
    const delay = reconnectDelay(this.attempts++);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      // A failed attempt has already scheduled the next one (through lost()).
      this.connect().catch((err: Error) =>
        this.opts.logger.debug({ err: { message: err.message } }, 'postgres bus reconnect failed'),
      );
    }, delay);
    this.reconnectTimer.unref();
  }

  private onMessage(raw: string): void {
    let msg: BusMessage;
    try {
      msg = JSON.parse(raw) as BusMessage;
    } catch {
      return;
    }
    if (msg.type === 'probe') {
      if (msg.origin === this.opts.nodeId && msg.id === this.outstandingProbe?.id) {
        this.outstandingProbe = undefined;
      }
      return;
    }
    for (const h of this.handlers) h(msg);
  }

  /**
   * NOTIFYs a probe to ourselves; if the previous one committed but never came back while the LISTEN
   * connection looked healthy, that connection is dead without knowing it: replace it (the reconnect
   * tells subscribers to re-read the log).
   */
  private async probe(): Promise<void> {
    if (this.closed) return;
    const last = this.outstandingProbe;
    if (last?.sent && this.listening && this.client) {
      this.probeFailures++;
      this.opts.logger.warn({ channel: this.channel }, 'postgres bus self-probe lost; reconnecting');
      this.outstandingProbe = undefined;
      this.lost(this.client);
      return;
    }
    if (last && !last.sent) return; // its NOTIFY is still on its way to the database
    const probe = { id: randomUUID(), sent: false };
    this.outstandingProbe = probe;
    try {
      await this.notify(this.opts.db, { type: 'probe', origin: this.opts.nodeId, id: probe.id });
      probe.sent = true;
    } catch {
      // The database is away: the pool and the LISTEN connection's own errors handle that case.
      if (this.outstandingProbe === probe) this.outstandingProbe = undefined;
    }
  }

  private async notify(executor: SqlExecutor, msg: BusMessage): Promise<void> {
    const payload = JSON.stringify(msg);
    if (Buffer.byteLength(payload) > NOTIFY_MAX_BYTES)
      throw new Error(`bus message of ${Buffer.byteLength(payload)} bytes is over NOTIFY's limit`);
    await sql`select pg_notify(${this.channel}, ${payload})`.execute(executor);
  }

  /**
   * The `events` wake-up, sent from inside the transaction that appended the events: PostgreSQL
   * delivers it when that transaction commits (to this node's listener too), and drops it on rollback.
   */
  readonly wakeInTransaction = (trx: SqlExecutor, head: number): Promise<void> =>
    this.notify(trx, { type: 'events', origin: this.opts.nodeId, head });

  /**
   * NOTIFYs every node, this one included (through its LISTEN connection). When the database refuses,
   * this node's handlers still hear it, then the error is thrown: the other nodes catch up on reconnect.
   */
  async publish(msg: BusMessage): Promise<void> {
    try {
      await this.notify(this.opts.db, msg);
    } catch (err) {
      for (const h of this.handlers) h(msg);
      throw err;
    }
  }

  subscribe(handler: BusHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  onReconnect(handler: () => void): () => void {
    this.reconnectHandlers.add(handler);
    return () => this.reconnectHandlers.delete(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.probeTimer);
    clearTimeout(this.reconnectTimer);
    this.handlers.clear();
    this.reconnectHandlers.clear();
    const client = this.client;
    this.client = undefined;
    this.listening = false;
    await client?.end().catch(() => {});
  }
}
