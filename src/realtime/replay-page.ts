/**
 * One page of a replay (resume.ts drives the pages): how many events fit, their bytes reserved from the
 * node's ReplayBudget before they are read, the MESSAGE_BATCH written, and the bytes given back once
 * the page has left the process. Replay memory is so bounded per connection (one page read at a time;
 * the last may still be leaving while the connection goes live) and per node (the budget).
 */
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { EventLogReader, EventSize, LogEvent, ReplayFrom } from '../event-log.ts';
import { FrameType } from '../protocol.ts';
import { spliceFrame } from './codec.ts';
import type { Connection } from './connection.ts';
import type { Containment } from './containment.ts';
import type { ReplayBudget } from './replay-budget.ts';
import type { SocketWriter } from './socket-writer.ts';

export interface PageDeps {
  source: Pick<EventLogReader, 'replaySizes' | 'replayPage'>;
  /** The node's replay memory, shared by all connections. */
  budget: ReplayBudget;
  writer: SocketWriter;
  containment: Containment;
  cursor: (seq: number) => string;
  realtime: Pick<Config['realtime'], 'sendQueueBytes'>;
  events: Pick<Config['events'], 'batchSize'>;
  clock: Clock;
}

/** Where a page starts and how far its replay goes. */
export interface PageAt {
  pos: ReplayFrom;
  target: number;
  /** The page's sizes when already read (the resume's start reads the first page's). */
  known: EventSize[] | undefined;
  /** The connection's first write after CONNECTED: no turn of the event loop before it. */
  first: boolean;
}

/** Whether `c` is closing (a function: the state may change across an await, which TS cannot see). */
const closing = (c: Connection) => c.state === 'closing';
/** Bytes a replayed event may weigh for `chars` characters of text (UTF-16, escapes, the frame around it). */
const bytesOf = (chars: number) => 2 * chars + 256;

/**
 * One page: as many of the next events as fit in half the send queue (at least one), their bytes
 * reserved from the node's budget before they are read and given back once written and drained.
 * The next page is read only once this one has left the process; after the last one the replay goes
 * on at once (its bytes stay reserved until they leave), so that CONNECTED, a short replay and the
 * unread count go out in one write. `release` lets the socket's held writes go. Resolves to the
 * position after the page, 'expired', or undefined when the connection closed.
 */
export async function replayPage(
  deps: PageDeps,
  c: Connection,
  at: PageAt,
  release: () => void,
): Promise<ReplayFrom | 'expired' | undefined> {
  const { source, budget, writer } = deps;
  const { pos, target } = at;
  const maxEvents = deps.events.batchSize;
  const maxBytes = Math.floor(deps.realtime.sendQueueBytes / 2);
  // Between pages a turn of the event loop (SQLite answers synchronously: a storm's replays would run
  // as one chain of microtasks, holding off handshakes and heartbeats); the first needs none, as each
  // attach starts from its own upgrade. A page written before (the last of a replay the overflow then
  // extended) holds replay memory until it leaves: the socket's writes must not be held any longer.
  if (!at.first) {
    release();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const sizes = at.known ?? (await source.replaySizes(c.userId, pos, target, maxEvents));
  if (sizes.length === 0) return { seq: target, floor: pos.floor };
  let n = 0;
  let bytes = 0;
  while (n < sizes.length && (n === 0 || bytes + bytesOf(sizes[n]?.chars ?? 0) <= maxBytes))
    bytes += bytesOf((sizes[n++] as { chars: number }).chars);
  const through = (sizes[n - 1] as { seq: number }).seq;
  // Fewer sizes than asked, all taken: nothing more up to the target.
  const done = sizes.length < maxEvents && n === sizes.length;
  const giveBack = await budget.acquire(bytes);
  let releaseHere = true;
  try {
    if (closing(c)) return undefined;
    const page = await source.replayPage(c.userId, pos, through, n);
    if (page.expired) return 'expired';
    const before = writeBatch(deps, c, page.events, through);
    if (done) {
      // The connection goes live now: its live frames may keep the socket above `before` for long
      // without it being stuck, so a stall only gives the bytes back (the send queue bounds them).
      const left = writer.drained(c, before, false);
      releaseHere = false;
      deps.containment.background(
        left.then(() => giveBack()),
        'replay memory release',
      );
    } else {
      // The page must leave before the next is read: nothing may hold the socket's writes now.
      release();
      if (!(await writer.drained(c, before)) || closing(c)) return undefined;
    }
  } finally {
    if (releaseHere) giveBack();
  }
  return { seq: done ? target : through, floor: pos.floor };
}

/**
 * Writes one page as a MESSAGE_BATCH whose cursor is `through`; returns the bytes the socket held
 * before it (once back to them, the page has left the process: FIFO).
 */
function writeBatch(deps: PageDeps, c: Connection, events: LogEvent[], through: number): number {
  const { writer, cursor } = deps;
  const inner: string[] = [];
  for (const e of events) {
    // A message deleted meanwhile (it cannot be while its event exists: expiry.ts keeps it) is skipped.
    if (e.dataJson === undefined) continue;
    inner.push(spliceFrame(e.type, e.dataJson, Math.floor(e.createdAt / 1000), cursor(e.seq)));
  }
  const ts = Math.floor(deps.clock.now() / 1000);
  const before = c.socket.bufferedAmount;
  writer.send(
    c,
    `{"type":"${FrameType.MESSAGE_BATCH}","data":{"messages":[${inner.join(',')}]},"timestamp":${ts},"cursor":${JSON.stringify(cursor(through))}}`,
  );
  return before;
}
