/**
 * The Redis bus for several nodes: one pub/sub channel, `<prefix>bus`, carrying small wake-ups. Every
 * node reads the whole event log anyway (it is the truth), so per-user channels would only add
 * SUBSCRIBE churn; the cost of one channel is that every node hears every wake-up (tens of bytes each).
 * See docs/decisions/0003-bus-is-a-wake-up.md.
 *
 * Redis pub/sub is at-most-once. What makes that safe: publishes never block a request (no offline
 * queue; a failed publish is dropped), the hubs also poll the log, every reconnect triggers a re-read,
 * and a periodic self-probe detects a subscription that died silently and rebuilds it.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Bus, BusHandler, BusMessage } from './bus.ts';

export interface RedisBusOptions {
  url: string;
  prefix: string;
  nodeId: string;
  probeIntervalMs: number;
  logger: Logger;
}

/** How long a command on the publisher (publish, quota, lockout, presence) may wait for Redis. */
const PUBLISHER_TIMEOUT_MS = 1_000;

export class RedisBus implements Bus {
  /** Exposed for diagnostics and tests. */
  readonly publisher: Redis;
  readonly subscriber: Redis;
  private readonly channel: string;
  private readonly handlers = new Set<BusHandler>();
  private readonly reconnectHandlers = new Set<() => void>();
  private probeTimer: NodeJS.Timeout | undefined;
  private outstandingProbe: string | undefined;
  private everReady = false;
  private closed = false;
  /** Counts lost subscriptions the probe found; bumped before the rebuild, listeners hear after it. */
  probeFailures = 0;

  constructor(private readonly opts: RedisBusOptions) {
    this.channel = `${opts.prefix}bus`;
    const common = {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (n: number) => Math.min(50 * 2 ** n, 2000),
    };
    // No offline queue on the publisher: a publish while Redis is away fails at once instead of holding
    // the HTTP request that committed the change. The same client counts the cluster's quotas and
    // login failures, on the request path too: a Redis that stops answering without dropping the
    // connection must not hold requests either, so each command gives up after PUBLISHER_TIMEOUT_MS.
    this.publisher = new Redis(opts.url, {
      ...common,
      enableOfflineQueue: false,
      commandTimeout: PUBLISHER_TIMEOUT_MS,
    });
    this.subscriber = new Redis(opts.url, { ...common, autoResubscribe: true });
    this.publisher.on('error', () => {});
    this.subscriber.on('error', (err: Error) =>
      opts.logger.debug({ err: { message: err.message } }, 'redis subscriber error'),
    );
    this.subscriber.on('message', (channel: string, raw: string) => {
      if (channel === this.channel) this.onMessage(raw);
    });
    this.subscriber.on('ready', () => {
      if (this.everReady) {
        opts.logger.info('redis bus reconnected; re-reading the event log');
        this.fireReconnect();
      }
      this.everReady = true;
    });
    void this.subscriber.subscribe(this.channel).catch(() => {});
    this.probeTimer = setInterval(() => void this.probe(), opts.probeIntervalMs);
    this.probeTimer.unref();
  }

  /** Resolves once both connections are ready (start-up waits for it so the first wake-ups are heard). */
  async ready(timeoutMs = 5000): Promise<void> {
    const wait = (r: Redis) =>
      r.status === 'ready'
        ? Promise.resolve()
        : new Promise<void>((resolve) => r.once('ready', () => resolve()));
    await Promise.race([
      Promise.all([wait(this.publisher), wait(this.subscriber)]),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`redis not ready after ${timeoutMs} ms`)), timeoutMs).unref(),
      ),
    ]);
  }

  private onMessage(raw: string): void {
    let msg: BusMessage;
    try {
      msg = JSON.parse(raw) as BusMessage;
    } catch {
      return;
    }
    if (msg.type === 'probe') {
      if (msg.origin === this.opts.nodeId && msg.id === this.outstandingProbe) {
        this.outstandingProbe = undefined;
      }
      return;
    }
    for (const h of this.handlers) h(msg);
  }

  private fireReconnect(): void {
    for (const h of this.reconnectHandlers) h();
  }

  /**
   * Publishes a probe to ourselves; if the previous one never came back while Redis accepted publishes,
   * the subscription is dead without the connection knowing: rebuild it and re-read the log.
   */
  private async probe(): Promise<void> {
    if (this.closed) return;
    if (
      this.outstandingProbe !== undefined &&
      this.publisher.status === 'ready' &&
      this.subscriber.status === 'ready'
    ) {
      this.probeFailures++;
      this.opts.logger.warn({ channel: this.channel }, 'redis bus self-probe lost; resubscribing');
      this.outstandingProbe = undefined;
      try {
        await this.subscriber.unsubscribe(this.channel);
        await this.subscriber.subscribe(this.channel);
      } catch {
        this.subscriber.disconnect(true);
      }
      this.fireReconnect();
      return;
    }
    const id = randomUUID();
    this.outstandingProbe = id;
    await this.publishRaw({ type: 'probe', origin: this.opts.nodeId, id }).catch(() => {
      // Redis is away: the connection's own reconnect handles that case.
      this.outstandingProbe = undefined;
    });
  }

  private async publishRaw(msg: BusMessage): Promise<void> {
    await this.publisher.publish(this.channel, JSON.stringify(msg));
  }

  /**
   * Publishes to every node, this one included (through Redis). When Redis refuses the publish, this
   * node's handlers still hear it, then the error is thrown: the other nodes catch up on reconnect.
   */
  async publish(msg: BusMessage): Promise<void> {
    try {
      await this.publishRaw(msg);
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
    this.handlers.clear();
    this.reconnectHandlers.clear();
    this.publisher.disconnect();
    this.subscriber.disconnect();
  }
}
