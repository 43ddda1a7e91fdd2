/**
 * Issue #12 item 4, fanout.ts: each event goes to the connections it concerns (a user's, or everyone's
 * for a broadcast), framed once for all of them; unread counts are pushed for the users whose count
 * changed, one query for all, and connecting users in one turn share one query.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LogEvent } from '../../src/event-log.ts';
import { event, parts, total } from './parts.ts';

/** A send to listed users as the tail reads it: by reference, recipients listed, data not read yet. */
const directSend = (seq: number, messageId: number, recipients: number[]): LogEvent => ({
  seq,
  userId: null,
  recipients,
  type: 'NEW_MESSAGE',
  messageId,
  dataJson: undefined,
  createdAt: 1_700_000_000_000,
});

describe('fanout: events by reference (issue #13)', () => {
  it('reads message data only for sends that reach a connection here, one query per batch', async () => {
    const asked: number[][] = [];
    const p = parts({
      source: {
        messageData: async (ids) => (
          asked.push([...ids]),
          new Map(ids.map((id) => [id, `{"messageId":${id}}`]))
        ),
      },
    });
    const a = p.live(1);
    const b = p.live(2);
    const events = [directSend(1, 10, [1, 2, 3]), directSend(2, 11, [7, 8]), directSend(3, 12, [2])];
    await p.fanout.resolve(events);
    assert.deepEqual(asked, [[10, 12]], 'message 11 has no recipient on this node: not read');
    const affected = p.fanout.dispatch(events);
    assert.deepEqual(a.socket.types(), ['NEW_MESSAGE']);
    assert.deepEqual(b.socket.types(), ['NEW_MESSAGE', 'NEW_MESSAGE']);
    assert.deepEqual([...affected].sort(), [1, 2]);
    assert.equal(a.socket.buffers[0], b.socket.buffers[0], 'one frame for all the recipients of a send');
  });

  it('reads again when a recipient connected while the data was being read', async () => {
    const asked: number[][] = [];
    const p: ReturnType<typeof parts> = parts({
      source: {
        messageData: async (ids) => {
          asked.push([...ids]);
          // A recipient of message 11 registers during the first read.
          if (asked.length === 1) p.live(8);
          return new Map(ids.map((id) => [id, `{"messageId":${id}}`]));
        },
      },
    });
    p.live(1);
    const events = [directSend(1, 10, [1]), directSend(2, 11, [8])];
    await p.fanout.resolve(events);
    assert.deepEqual(asked, [[10], [11]]);
    assert.equal(events[1]?.dataJson, '{"messageId":11}');
  });

  it('skips an event whose message no longer exists, and reads nothing when nobody is here', async () => {
    let reads = 0;
    const p = parts({ source: { messageData: async () => (reads++, new Map()) } });
    await p.fanout.resolve([directSend(1, 10, [1])]);
    assert.equal(reads, 0, 'nobody connected: nothing read');
    const a = p.live(1);
    const events = [directSend(2, 10, [1])];
    await p.fanout.resolve(events);
    assert.equal(reads, 1, 'a missing message is asked for once, not in a loop');
    p.fanout.dispatch(events);
    assert.deepEqual(a.socket.types(), []);
  });
});

describe('fanout', () => {
  it("a user's event reaches that user's connections only; a broadcast reaches all", async () => {
    const p = parts();
    const a1 = p.live(1);
    const a2 = p.live(1);
    const b = p.live(2);
    const affected = p.fanout.dispatch([event(1, 1), event(2, null, 'SYSTEM_NOTIFY')]);
    assert.deepEqual(a1.socket.types(), ['NEW_MESSAGE', 'SYSTEM_NOTIFY']);
    assert.deepEqual(a2.socket.types(), ['NEW_MESSAGE', 'SYSTEM_NOTIFY']);
    assert.deepEqual(b.socket.types(), ['SYSTEM_NOTIFY']);
    assert.deepEqual([...affected], [1], 'SYSTEM_NOTIFY changes no count');
    assert.equal(await total(p.metrics.framesSent), 5);
  });

  it('frames each event once, whatever the number of recipients', () => {
    const p = parts();
    const conns = [p.live(1), p.live(2), p.live(3)];
    p.fanout.dispatch([event(1, null, 'NEW_MESSAGE')]);
    const first = conns[0]?.socket.buffers[0];
    assert.ok(first);
    for (const x of conns) assert.equal(x.socket.buffers[0], first, 'the same Buffer for every socket');
  });

  it('a broadcast that changes counts affects every user online here', () => {
    const p = parts();
    p.live(1);
    p.live(2);
    assert.deepEqual([...p.fanout.dispatch([event(1, null, 'MESSAGE_DELETED')])].sort(), [1, 2]);
  });

  it('a lone event leaves uncorked and reports its fan-out size; a batch corks', async () => {
    const p = parts();
    const { socket } = p.live(1);
    p.fanout.dispatch([event(1, 1, 'SYSTEM_NOTIFY')]);
    assert.equal(socket._socket?.corks, 0);
    assert.deepEqual(p.fannedOut, [1]);
    p.fanout.dispatch([event(2, 1), event(3, 1)]);
    assert.equal(socket._socket?.corks, 1);
    assert.deepEqual(p.fannedOut, [1], 'corked fan-outs report at the flush instead');
  });

  it('refreshCounts: one query, one frame per distinct count; replaying connections are marked', async () => {
    const queries: number[][] = [];
    const p = parts({
      source: {
        unreadCounts: async (ids) => {
          queries.push([...ids]);
          return new Map(ids.map((id) => [id, id === 3 ? 9 : 4]));
        },
      },
    });
    const a = p.live(1);
    const b = p.live(2);
    const c = p.live(3);
    const { c: replaying } = p.connection(1);
    p.registry.register(replaying);
    await p.fanout.refreshCounts(new Set([1, 2, 3, 4]));
    assert.deepEqual(queries, [[1, 2, 3, 4]]);
    assert.equal(a.socket.frames()[0]?.data['count'], 4);
    assert.equal(a.socket.texts[0], b.socket.texts[0], 'the same frame for the same count');
    assert.equal(c.socket.frames()[0]?.data['count'], 9);
    assert.equal(replaying.countStale, true);
  });

  it('unreadCountOf: connections set up in one turn share one query', async () => {
    const queries: number[][] = [];
    const p = parts({
      source: {
        unreadCounts: async (ids) => {
          queries.push([...ids]);
          return new Map(ids.map((id) => [id, id * 10]));
        },
      },
    });
    const counts = await Promise.all([p.fanout.unreadCountOf(1), p.fanout.unreadCountOf(2)]);
    assert.deepEqual(counts, [10, 20]);
    assert.deepEqual(queries, [[1, 2]]);
    assert.equal(await p.fanout.unreadCountOf(3), 30);
    assert.equal(queries.length, 2, 'a later turn asks again');
  });
});
