/** Shapes exchanged between the orchestrator and the load-client / driver processes. */
import type { HistogramData } from '../lib/histogram.ts';
import type { Filler, MarkerKind } from '../lib/marker.ts';

export type Proto = 'ws' | 'sio' | 'skypush';

export interface ClientTarget {
  proto: Proto;
  port: number;
  /** skypush: the JWT secret, so the client mints its users' tokens itself. */
  secret?: string;
}

export interface ConnectArgs {
  target: ClientTarget;
  users: number[];
  /** Source addresses (127.0.0.x), used round-robin. */
  addresses: string[];
  /** Handshakes in flight at once. */
  concurrency: number;
  timeoutMs: number;
}

export interface ReconnectArgs {
  /** skypush: resume with ?since=<cursor of the last frame>. */
  resume: boolean;
  /** A connection counts as back only once a replayed 'r' marker arrived. */
  expectReplay: boolean;
  /** Connections that failed are tried again (after 0.2–1 s, from their cursor) for this long. */
  retryForMs?: number;
  concurrency: number;
  timeoutMs: number;
}

export interface KindStats {
  count: number;
  /** Receive time of the last marker of this kind (shared monotonic clock, µs). */
  lastUs: number;
  hist: HistogramData;
}

export interface ClientSnapshot {
  pid: number;
  connections: number;
  open: number;
  ready: number;
  /** Closes not asked for by the orchestrator, since the last reset. */
  unexpectedCloses: number;
  failedConnects: number;
  /** Why connections failed: error code (ECONNRESET…) or message ("Unexpected server response: 503"). */
  failures: Record<string, number>;
  frames: number;
  bytes: number;
  cpuUs: number;
  /** When the last connection became ready (µs), for connect and reconnect timing. */
  lastReadyUs: number;
  /** skypush: UNREAD_COUNT frames since the last reset, and when the last one arrived (µs). */
  unread: { count: number; lastUs: number };
  kinds: Record<MarkerKind, KindStats>;
}

export interface DriverTarget {
  kind: 'skypush' | 'peer';
  port: number;
  /** skypush: an admin bearer token. */
  token?: string;
  /** Characters of message content (marker + filler). */
  contentLength: number;
  /** What pads the marker: 'x' (the default) or incompressible 'random' characters. */
  filler?: Filler;
}

/** What a driver request does: an admin broadcast (SYSTEM_NOTIFY), a send to users, a send-to-all. */
export type Endpoint = 'broadcast' | 'send' | 'toall';

export interface StreamArgs {
  endpoint: 'broadcast' | 'send';
  kind: MarkerKind;
  /** Requests per second, open loop: request i is due at start + i / rate whatever happened before. */
  rate: number;
  count: number;
  /** For 'send': the user ids to pick targets from, round-robin over a shuffled order. */
  users?: number[];
  /** First marker id (ids are firstId .. firstId + count - 1). */
  firstId?: number;
}

export interface StreamResult {
  sent: number;
  ok: number;
  failed: number;
  firstDueUs: number;
  lastDueUs: number;
  /** Per user id: how many sends targeted it (so the parent knows what each client should receive). */
  perUser?: Record<number, number>;
  /** HTTP round trip from the due time (µs). */
  http: HistogramData;
  errors: string[];
}
