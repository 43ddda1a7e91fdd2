/**
 * Property: whatever the interleaving of send, send-to-all, read, read-all, delete (from another
 * device), disconnect and resume, a client that follows the protocol ends with exactly the server's
 * inbox and unread count.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';
import { ResumingClient, restInbox, type InboxEntry } from '../helpers/resuming-client.ts';

type Cmd =
  | { kind: 'send' }
  | { kind: 'sendAll' }
  | { kind: 'read'; pick: number }
  | { kind: 'delete'; pick: number }
  | { kind: 'readAll' }
  | { kind: 'disconnect' }
  | { kind: 'resume' };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'send' as const }), weight: 4 },
  { arbitrary: fc.constant({ kind: 'sendAll' as const }), weight: 1 },
  { arbitrary: fc.nat().map((pick) => ({ kind: 'read' as const, pick })), weight: 2 },
  { arbitrary: fc.nat().map((pick) => ({ kind: 'delete' as const, pick })), weight: 2 },
  { arbitrary: fc.constant({ kind: 'readAll' as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'disconnect' as const }), weight: 2 },
  { arbitrary: fc.constant({ kind: 'resume' as const }), weight: 2 },
);

const sorted = (m: Map<number, InboxEntry>) =>
  [...m.values()].map((e) => ({ ...e })).sort((a, b) => b.id - a.id);

const seqOf = (cursor: string | undefined) => Number(cursor?.split('.')[1] ?? 0);

for (const dialect of DIALECTS) {
  describe(`${dialect}: reconstructed inbox equals the server's`, () => {
    let t: TestApp;
    let run = 0;
    before(async () => {
      t = await startApp({ dialect });
    });
    after(async () => t.close());

    it('holds for random interleavings of changes, disconnects and resumes', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(cmd, { minLength: 5, maxLength: 25 }), async (cmds) => {
          const u = await t.createUser(`prop-${dialect}-${run++}`);
          const refetch = () => restInbox(t.request, u.token);
          const client = new ResumingClient(t.wsUrl, u.token, refetch);
          await client.connect();
          /** Where the client's stream starts: the first CONNECTED cursor. */
          const start = seqOf(client.cursor);
          // A second connection that stays online: once it has seen the user's last event, this node's
          // hub has read that far, so a resume replays everything missed (none of it arrives live).
          const watcher = new ResumingClient(t.wsUrl, u.token);
          await watcher.connect();
          const { db } = t.app.store;
          /**
           * The user's events in (afterSeq, uptoSeq]: theirs, everyone's, and the sends to listed users
           * that list them (one row per send, user_id -1, recipients in the inbox).
           */
          const userEvents = (afterSeq: number, uptoSeq = Number.MAX_SAFE_INTEGER) =>
            db
              .selectFrom('events')
              .select('seq')
              .where((eb) =>
                eb.or([
                  eb('user_id', '=', u.id),
                  eb('user_id', 'is', null),
                  eb.and([
                    eb('user_id', '=', -1),
                    eb(
                      'message_id',
                      'in',
                      eb.selectFrom('inbox').select('inbox.message_id').where('inbox.user_id', '=', u.id),
                    ),
                  ]),
                ]),
              )
              .where('seq', '>', afterSeq)
              .where('seq', '<=', uptoSeq)
              .orderBy('seq')
              .execute()
              .then((rows) => rows.map((r) => Number(r.seq)));
          /** Expected `replayed` of each resume, in order. */
          const expectedReplays: number[] = [];
          const resume = async () => {
            const userHead = (await userEvents(0)).at(-1) ?? 0;
            await watcher.until(() => seqOf(watcher.cursor) >= userHead, 5000, 'the hub to reach the head');
            expectedReplays.push((await userEvents(seqOf(client.cursor), userHead)).length);
            await client.connect();
          };
          // An app loads the inbox once after its first connect; events keep it current from then on.
          for (const e of await refetch()) client.inbox.set(e.id, e);
          let online = true;
          for (const c of cmds) {
            const known = (await refetch()).map((e) => e.id);
            switch (c.kind) {
              case 'send':
              case 'sendAll':
                await t.request('POST', '/api/v1/messages/send', {
                  token: t.adminToken,
                  body: {
                    title: 'p',
                    content: 'c',
                    ...(c.kind === 'send'
                      ? { targetType: 'user', targetIds: [u.id] }
                      : { targetType: 'all' }),
                  },
                });
                break;
              case 'read':
                if (known.length)
                  await t.request('PUT', `/api/v1/messages/${known[c.pick % known.length]}/read`, {
                    token: u.token,
                  });
                break;
              case 'delete':
                if (known.length)
                  await t.request('DELETE', `/api/v1/messages/${known[c.pick % known.length]}`, {
                    token: u.token,
                  });
                break;
              case 'readAll':
                await t.request('PUT', '/api/v1/messages/read-all', { token: u.token });
                break;
              case 'disconnect':
                if (online) await client.drop();
                online = false;
                break;
              case 'resume':
                if (!online) await resume();
                online = true;
                break;
            }
          }
          if (!online) await resume();
          const server = await refetch();
          const count = (
            await t.request<{ count: number }>('GET', '/api/v1/messages/unread-count', { token: u.token })
          ).body.data.count;
          await client
            .until(
              () =>
                JSON.stringify(sorted(client.inbox)) === JSON.stringify(server) &&
                client.lastUnread === count,
              5000,
              'convergence',
            )
            .catch(() => {});
          assert.deepEqual(sorted(client.inbox), server);
          assert.equal(client.lastUnread, count);
          assert.equal(count, server.filter((e) => !e.isRead).length);
          const ids = client.newMessageIds();
          assert.equal(new Set(ids).size, ids.length, 'no NEW_MESSAGE twice');
          // Every resume was within retention and SKYPUSH_REPLAY_MAX, so each must have succeeded and
          // replayed exactly what was missed: converging through RESYNC refetches does not count.
          assert.deepEqual(client.resyncs, [], 'no RESYNC');
          assert.deepEqual(
            client.connects.slice(1),
            expectedReplays.map((replayed) => ({ ok: true, replayed })),
          );
          // Without a RESYNC, the client processed each of its events exactly once, in log order.
          assert.deepEqual(
            client.events.map((e) => seqOf(e.cursor)),
            await userEvents(start),
          );
          await watcher.close();
          await client.close();
        }),
        { numRuns: 15 },
      );
    });
  });
}
