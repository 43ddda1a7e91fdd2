import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { appendEvents } from '../../src/messages/event-log.repository.ts';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const dialect of DIALECTS) {
  describe(`${dialect}: commit order is cursor order`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ dialect });
    });
    after(async () => t.close());

    it('never lets a reader see a later commit while an earlier append is still open', async () => {
      const { db } = t.app.store;
      const head = await t.app.eventLog.head();
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let appended!: () => void;
      const firstAppended = new Promise<void>((r) => (appended = r));
      const tx1 = db.transaction().execute(async (trx) => {
        const seq = await appendEvents(
          trx,
          dialect,
          [{ userId: null, type: 'SYSTEM_NOTIFY', data: { n: 1 } }],
          Date.now(),
        );
        appended();
        await held;
        return seq;
      });
      await firstAppended;
      // A second writer starts and would commit first if nothing ordered them.
      const tx2 = db
        .transaction()
        .execute((trx) =>
          appendEvents(trx, dialect, [{ userId: null, type: 'SYSTEM_NOTIFY', data: { n: 2 } }], Date.now()),
        );
      await sleep(300);
      const seen = await Promise.race([
        t.app.eventLog.readAfter(head, 10),
        sleep(300).then(() => 'blocked' as const),
      ]);
      if (seen !== 'blocked') {
        const ns = seen.map((e) => (JSON.parse(e.dataJson) as { n: number }).n);
        assert.ok(
          !(ns.includes(2) && !ns.includes(1)),
          `reader saw the later commit alone: ${JSON.stringify(ns)}`,
        );
      }
      release();
      const [s1, s2] = await Promise.all([tx1, tx2]);
      assert.ok(s1 < s2, `first append has the lower seq (${s1} < ${s2})`);
      const all = await t.app.eventLog.readAfter(head, 10);
      assert.deepEqual(
        all.map((e) => (JSON.parse(e.dataJson) as { n: number }).n),
        [1, 2],
      );
    });

    it('delivers concurrent sends to a live client in strictly increasing cursor order', async () => {
      const u = await t.createUser(`order-${dialect}`);
      const { connect } = await import('../helpers/ws-client.ts');
      const sock = await connect(t.wsUrl, { token: u.token });
      await sock.waitFor((f) => f.type === 'UNREAD_COUNT');
      const ids = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          t
            .request<{ messageId: number }>('POST', '/api/v1/messages/send', {
              token: t.adminToken,
              body: { title: `c${i}`, content: 'x', targetType: 'user', targetIds: [u.id] },
            })
            .then((r) => r.body.data.messageId),
        ),
      );
      const deadline = Date.now() + 10_000;
      while (sock.frames.filter((f) => f.type === 'NEW_MESSAGE').length < ids.length && Date.now() < deadline)
        await sleep(20);
      const got = sock.frames.filter((f) => f.type === 'NEW_MESSAGE');
      assert.deepEqual(got.map((f) => f.data['messageId']).sort(), [...ids].sort());
      const seqs = got.map((f) => Number(f.cursor?.split('.')[1]));
      for (let i = 1; i < seqs.length; i++)
        assert.ok((seqs[i] as number) > (seqs[i - 1] as number), 'cursor order');
      await sock.close();
    });
  });
}
