/**
 * Exactly-once, checked per connection: for one marker kind with ids 0 … ids−1, how many times each
 * connection received each id. A load client records into it on the receive path (one array write per
 * marker, nothing allocated); the report says how many connections got every id exactly once, and
 * counts duplicates, gaps and ids outside the range.
 */
import type { MarkerKind } from '../lib/marker.ts';

export interface TallyReport {
  connections: number;
  /** Connections that received every id, none of them twice. */
  exactlyOnce: number;
  /** Connections that received every id at least once. */
  complete: number;
  /** Receipts beyond the first of an id, over all connections. */
  duplicates: number;
  /** (connection, id) pairs never received. */
  missing: number;
  /** Markers of the kind with an id outside 0 … ids−1. */
  stray: number;
  /** When the last connection became complete (shared monotonic clock, µs; 0 if none did). */
  lastCompleteUs: number;
}

export class Tally {
  private readonly seen: Uint16Array;
  private readonly distinct: Uint32Array;
  private complete = 0;
  private stray = 0;
  private lastCompleteUs = 0;

  constructor(
    readonly kind: MarkerKind,
    readonly ids: number,
    readonly connections: number,
  ) {
    this.seen = new Uint16Array(ids * connections);
    this.distinct = new Uint32Array(connections);
  }

  record(conn: number, id: number, atUs: number): void {
    if (id < 0 || id >= this.ids || conn < 0 || conn >= this.connections) {
      this.stray++;
      return;
    }
    const i = conn * this.ids + id;
    const n = this.seen[i] ?? 0;
    if (n < 0xffff) this.seen[i] = n + 1;
    if (n !== 0) return;
    const d = (this.distinct[conn] ?? 0) + 1;
    this.distinct[conn] = d;
    if (d === this.ids) {
      this.complete++;
      this.lastCompleteUs = atUs;
    }
  }

  /** Every connection has every id (duplicates or not). */
  get done(): boolean {
    return this.complete === this.connections;
  }

  report(): TallyReport {
    let duplicates = 0;
    let missing = 0;
    let exactlyOnce = 0;
    for (let c = 0; c < this.connections; c++) {
      let clean = true;
      for (let id = 0; id < this.ids; id++) {
        const n = this.seen[c * this.ids + id] ?? 0;
        if (n === 0) missing++;
        if (n > 1) duplicates += n - 1;
        if (n !== 1) clean = false;
      }
      if (clean) exactlyOnce++;
    }
    return {
      connections: this.connections,
      exactlyOnce,
      complete: this.complete,
      duplicates,
      missing,
      stray: this.stray,
      lastCompleteUs: this.lastCompleteUs,
    };
  }
}
