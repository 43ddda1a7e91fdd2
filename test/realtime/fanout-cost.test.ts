/**
 * Issue #3 item 5 (seed defects 6, 7 and 9): a fan-out serialises each frame once, not once per
 * recipient; unread counts for many targets cost a constant number of queries; connections carry no
 * timers of their own. Each test compares a small fan-out with a large one, so per-recipient work shows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DefaultQueryExecutor } from 'kysely';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';
import { createUsers, sendTo } from '../helpers/realtime.ts';
import { connect, type Frame, type TestSocket } from '../helpers/ws-client.ts';

type U = { id: number; token: string };

// Heartbeats far away, so none is written while a fan-out is being measured.
const QUIET = {
  SKYPUSH_HEARTBEAT_INTERVAL_MS: '3600000',
  SKYPUSH_HEARTBEAT_TIMEOUT_MS: '7200000',
  SKYPUSH_MAX_CONNECTIONS_PER_USER: '100',
};

/** Counts calls of `obj[key]` while `work` runs. */
async function countCalls<T extends object, K extends keyof T>(
  obj: T,
  key: K,
  work: () => Promise<void>,
): Promise<number> {
  const original = obj[key] as (...args: unknown[]) => unknown;
  const own = Object.prototype.hasOwnProperty.call(obj, key);
  let calls = 0;
  (obj as Record<K, unknown>)[key] = function (this: unknown, ...args: unknown[]) {
    calls++;
    return original.apply(this, args);
  };
  try {
    await work();
  } finally {
    if (own) (obj as Record<K, unknown>)[key] = original;
    else delete (obj as Partial<Record<K, unknown>>)[key];
  }
  return calls;
}

async function openLive(t: TestApp, tokens: string[]): Promise<TestSocket[]> {
  const socks = await Promise.all(tokens.map((token) => connect(t.wsUrl, { token })));
  await Promise.all(socks.map((s) => s.waitFor((f) => f.type === 'UNREAD_COUNT')));
  return socks;
}

/** Waits until every socket got the frame matched by `pred` and an UNREAD_COUNT after it. */
async function countsAfter(socks: TestSocket[], pred: (f: Frame) => boolean): Promise<void> {
  await Promise.all(
    socks.map(async (s) => {
      const hit = await s.waitFor(pred);
      await s.waitFor((f) => f.type === 'UNREAD_COUNT' && s.frames.indexOf(f) > s.frames.indexOf(hit));
    }),
  );
}

describe('fan-out cost: serialise once', () => {
  let t: TestApp;
  let users: U[];
  before(async () => {
    t = await startApp({ env: QUIET });
    users = await createUsers(t, 12_001, 40);
  });
  after(async () => t.close());

  it('encodes a broadcast and a send-to-all once, whatever the number of recipients (seed defect 6)', async () => {
    const measure = async (n: number) => {
      const socks = await openLive(
        t,
        users.slice(0, n).map((u) => u.token),
      );
      const stringify = await countCalls(JSON, 'stringify', async () => {
        const b = await t.request('POST', '/api/v1/ws/broadcast', {
          token: t.adminToken,
          body: { data: { title: 'notice', content: 'x' } },
        });
        assert.equal(b.status, 200);
        await Promise.all(socks.map((s) => s.waitFor((f) => f.type === 'SYSTEM_NOTIFY')));
        const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
          token: t.adminToken,
          body: { title: 'all', content: 'y', targetType: 'all' },
        });
        await countsAfter(socks, (f) => f.data['messageId'] === r.body.data.messageId);
      });
      await Promise.all(socks.map((s) => s.close()));
      return stringify;
    };
    const few = await measure(4);
    const many = await measure(40);
    // Once per recipient would add at least 36 × 3 calls.
    assert.ok(many - few <= 6, `JSON.stringify calls: ${few} for 4 recipients, ${many} for 40`);
  });

  it("encodes a user's frame once for all of that user's tabs", async () => {
    const u = users[0] as U;
    const measure = async (tabs: number) => {
      const socks = await openLive(
        t,
        Array.from({ length: tabs }, () => u.token),
      );
      let id = 0;
      const stringify = await countCalls(JSON, 'stringify', async () => {
        id = await sendTo(t, [u.id]);
        await countsAfter(socks, (f) => f.data['messageId'] === id);
      });
      await Promise.all(socks.map((s) => s.close()));
      return stringify;
    };
    const few = await measure(2);
    const many = await measure(30);
    assert.ok(many - few <= 3, `JSON.stringify calls: ${few} for 2 tabs, ${many} for 30`);
  });

  it('opens connections without a timer each (one sweep timer per hub)', async () => {
    const timers = { setTimeout: 0, setInterval: 0 };
    const socks: TestSocket[] = [];
    const n = await countCalls(globalThis, 'setInterval', async () => {
      timers.setTimeout = await countCalls(globalThis, 'setTimeout', async () => {
        socks.push(
          ...(await openLive(
            t,
            users.map((u) => u.token),
          )),
        );
      });
    });
    timers.setInterval = n;
    assert.ok(
      timers.setInterval === 0 && timers.setTimeout < 10,
      `timers for 40 connections: ${JSON.stringify(timers)}`,
    );
    await Promise.all(socks.map((s) => s.close()));
  });
});

for (const dialect of DIALECTS) {
  describe(`${dialect}: fan-out cost: unread counts (seed defect 7)`, () => {
    let t: TestApp;
    let users: U[];
    before(async () => {
      t = await startApp({ dialect, env: QUIET });
      users = await createUsers(t, 13_001, 30);
    });
    after(async () => t.close());

    it('computes the unread counts of every target in a constant number of queries', async () => {
      const measure = async (n: number) => {
        const targets = users.slice(0, n);
        const socks = await openLive(
          t,
          targets.map((u) => u.token),
        );
        const lookups: number[][] = [];
        const eventLog = t.app.eventLog;
        const original = eventLog.unreadCounts;
        eventLog.unreadCounts = (ids) => (lookups.push([...ids]), original(ids));
        let id = 0;
        const queries = await countCalls(DefaultQueryExecutor.prototype, 'executeQuery', async () => {
          id = await sendTo(
            t,
            targets.map((u) => u.id),
          );
          await countsAfter(socks, (f) => f.data['messageId'] === id);
        }).finally(() => (eventLog.unreadCounts = original));
        // The pushed counts are the REST counts.
        for (const [i, s] of socks.entries()) {
          const f = s.frames.filter((x) => x.type === 'UNREAD_COUNT').at(-1) as Frame;
          assert.equal(f.data['count'], await t.app.messages.unreadCount((targets[i] as U).id));
        }
        await Promise.all(socks.map((s) => s.close()));
        return { queries, lookups };
      };
      const few = await measure(3);
      const many = await measure(30);
      assert.equal(many.lookups.length, 1, `unreadCounts called ${many.lookups.length} times`);
      assert.equal(many.lookups[0]?.length, 30);
      // The poll timer may add one tail read; per-target counting would add at least 27.
      assert.ok(
        Math.abs(many.queries - few.queries) <= 2,
        `queries: ${few.queries} for 3 targets, ${many.queries} for 30`,
      );
    });
  });
}
