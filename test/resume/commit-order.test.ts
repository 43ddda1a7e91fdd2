import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { appendEvents } from '../../src/messages/event-log-append.ts';
import { headSeq, readAfter } from '../../src/messages/event-log.repository.ts';
import { openStore } from '../../src/store/database.ts';
import { DIALECTS, startApp, type TestApp } from '../helpers/app.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const dialect of DIALECTS) {
  describe(`${dialect}: commit order is cursor order`, () => {
    let t: TestApp;
    before(async () => {
      t = await startApp({ dialect });
    });
    after(async () => t.close());

    // Three appends: A appends n=1 and stays open; B starts appending n=2; A appends n=3 and commits; then
    // B commits. Commit order (A, then B) must be seq order, so a reader on another connection, reading at
    // each step, only ever sees a prefix of the final log: with the lock removed, B draws its seq while A
    // is open; with the lock taken after the seq is drawn, B draws seq 2 and waits for the lock while A
    // draws seq 3 and commits first, so a reader sees 1 and 3 before 2 exists.
    it('never lets a reader see a seq before every lower seq that will commit has committed', async () => {
      const { db } = t.app.store;
      // Another store on the same database (as another node would open it): a reader that neither the
      // app's one SQLite connection nor its PostgreSQL pool can make wait.
      const reader = openStore(t.config.database);
      try {
        const head = await headSeq(reader.db);
        const read = async () =>
          (await readAfter(reader.db, head, 10)).map((e) => ({
            seq: Number(e.seq),
            n: (JSON.parse(e.data) as { n: number }).n,
          }));
        const append = (trx: typeof db, n: number) =>
          appendEvents(trx, dialect, [{ userId: null, type: 'SYSTEM_NOTIFY', data: { n } }], Date.now());
        const gate = () => {
          let open!: () => void;
          const passed = new Promise<void>((r) => (open = r));
          return { open, passed };
        };
        const aAppended = gate();
        const aGo = gate();
        const bAppended = gate();
        const bGo = gate();
        const txA = db.transaction().execute(async (trx) => {
          await append(trx, 1);
          aAppended.open();
          await aGo.passed;
          await append(trx, 3);
        });
        await aAppended.passed;
        const txB = db.transaction().execute(async (trx) => {
          await append(trx, 2);
          bAppended.open();
          await bGo.passed;
        });
        const bDrewFirst = await Promise.race([
          bAppended.passed.then(() => true),
          sleep(300).then(() => false),
        ]);
        const reads = [await read()];
        aGo.open();
        await txA;
        await bAppended.passed;
        reads.push(await read());
        bGo.open();
        await txB;
        const final = await read();
        for (const seen of reads)
          assert.deepEqual(
            seen,
            final.slice(0, seen.length),
            `a reader saw ${JSON.stringify(seen)}, not a prefix of the log ${JSON.stringify(final)}`,
          );
        assert.deepEqual(
          final.map((e) => e.n),
          [1, 3, 2],
          'seq order is commit order: both of A, then B',
        );
        assert.equal(bDrewFirst, false, 'a second append finished while the first transaction was open');
      } finally {
        await reader.close();
      }
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
