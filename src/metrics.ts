/** Prometheus metrics, one registry per app so tests and several in-process apps do not collide. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * Every metric the server exports, declared in one place (long because it is a list: one
 * declaration per metric, no logic).
 */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'skypush_' });
  const registers = [registry];
  return {
    registry,
    httpDuration: new Histogram({
      name: 'skypush_http_request_duration_seconds',
      help: 'HTTP request latency by route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    messagesSent: new Counter({
      name: 'skypush_messages_sent_total',
      help: 'Messages stored by target type',
      labelNames: ['target_type'] as const,
      registers,
    }),
    dbErrors: new Counter({
      name: 'skypush_db_errors_total',
      help: 'Database errors seen by requests',
      registers,
    }),
    wsConnections: new Gauge({
      name: 'skypush_ws_connections',
      help: 'Open WebSocket connections on this node',
      registers,
    }),
    wsConnects: new Counter({
      name: 'skypush_ws_connects_total',
      help: 'Accepted WebSocket connections',
      registers,
    }),
    wsRejects: new Counter({
      name: 'skypush_ws_rejects_total',
      help: 'Upgrades refused before the handshake, by HTTP status',
      labelNames: ['status'] as const,
      registers,
    }),
    wsDisconnects: new Counter({
      name: 'skypush_ws_disconnects_total',
      help: 'WebSocket disconnects by close code',
      labelNames: ['code'] as const,
      registers,
    }),
    framesSent: new Counter({
      name: 'skypush_ws_frames_sent_total',
      help: 'Frames queued to sockets',
      registers,
    }),
    framesDropped: new Counter({
      name: 'skypush_ws_frames_dropped_total',
      help: 'Frames not sent because the connection was closing or over its queue bound',
      registers,
    }),
    slowConsumers: new Counter({
      name: 'skypush_ws_slow_consumer_closes_total',
      help: 'Connections closed because their send queue exceeded its bound',
      registers,
    }),
    fanoutDuration: new Histogram({
      name: 'skypush_fanout_duration_seconds',
      help: 'Time to deliver one batch of events from the log to local sockets',
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    }),
    commitBatch: new Histogram({
      name: 'skypush_db_commit_batch_size',
      help: 'Changes committed together in one SQLite transaction (group commit)',
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
    }),
    busMessages: new Counter({
      name: 'skypush_bus_messages_total',
      help: 'Bus messages received by type',
      labelNames: ['type'] as const,
      registers,
    }),
  };
}
