import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIALECTS, startApp, type Res, type TestApp } from '../helpers/app.ts';
import { rowCounts } from '../helpers/store.ts';

const SEND = '/api/v1/messages/send';

for (const dialect of DIALECTS) {
  describe(`${dialect}: what a send may carry`, () => {
    let t: TestApp;
    let user: { id: number; token: string };
    const targets: number[] = [];
    before(async () => {
      t = await startApp({
        dialect,
        env: { SKYPUSH_MAX_MESSAGE_BYTES: '2048', SKYPUSH_MAX_SEND_BYTES: '8192' },
      });
      user = await t.createUser('sender', { id: 700 });
      for (let id = 701; id <= 709; id++) targets.push((await t.createUser(`r${id}`, { id })).id);
    });
    after(async () => t.close());

    const send = (body: Record<string, unknown>, token = user.token) =>
      t.request<unknown>('POST', SEND, {
        token,
        body: { title: 't', content: 'c', targetType: 'user', targetIds: [701], ...body },
      });
    /** Runs `fn` and asserts no table changed. */
    const nothingStored = async <T>(fn: () => Promise<T>): Promise<T> => {
      const before = await rowCounts(t.app.store.db);
      const out = await fn();
      assert.deepEqual(await rowCounts(t.app.store.db), before);
      return out;
    };
    const assertError = (r: Res<unknown>, status: number, code: number) => {
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.code, code, JSON.stringify(r.body));
    };

    it('counts the title in UTF-8 bytes, not characters', async () => {
      // 400 characters pass the schema's 1,024 but are 1,200 bytes.
      const r = await nothingStored(() => send({ title: '€'.repeat(400) }));
      assertError(r, 400, 40001);
      assert.deepEqual(r.body.data, { in: 'body', field: '/title' });
      assert.match(r.body.message, /1024 bytes/);
      assert.equal((await send({ title: '€'.repeat(341) })).status, 200, '1,023 bytes fit');
    });

    it('counts the content in bytes against SKYPUSH_MAX_MESSAGE_BYTES', async () => {
      // 1,100 characters, 2,200 bytes: under 2,048 characters, over 2,048 bytes.
      const r = await nothingStored(() => send({ content: 'é'.repeat(1100) }));
      assertError(r, 400, 40001);
      assert.deepEqual(r.body.data, { in: 'body', field: '/content' });
      const emoji = await nothingStored(() => send({ content: '😀'.repeat(513) }));
      assertError(emoji, 400, 40001);
    });

    it('refuses a message whose fields together are over the cap with 413 41301', async () => {
      const body = { title: 'x'.repeat(1000), content: 'y'.repeat(1000), linkUrl: `/${'z'.repeat(99)}` };
      const r = await nothingStored(() => send(body));
      assertError(r, 413, 41301);
      assert.deepEqual(r.body.data, { bytes: 2100, maxBytes: 2048 });
      assert.match(r.body.message, /SKYPUSH_MAX_MESSAGE_BYTES/);
      assert.equal((await send({ ...body, linkUrl: '/z' })).status, 200, '2,002 bytes fit');
    });

    it('caps distinct targets × message bytes with 413 41302', async () => {
      const content = 'c'.repeat(999); // 1,000 bytes with the title
      const nine = await nothingStored(() => send({ content, targetIds: targets }));
      assertError(nine, 413, 41302);
      assert.deepEqual(nine.body.data, { bytes: 9000, maxBytes: 8192 });
      const eight = targets.slice(0, 8);
      const ok = await send({ content, targetIds: [...eight, ...eight] });
      assert.equal(ok.status, 200, 'duplicates count once: 8 × 1,000 bytes fit');
    });

    it('refuses unsafe linkUrls with 400 40001 naming the field, and stores good ones as given', async () => {
      const refused = [
        'javascript:alert(1)',
        'data:text/html,x',
        '//evil.example/',
        '/\\evil.example',
        'https://evil.example\\@good.example/',
        'https://good.example@evil.example/',
        '/inbox\u0000',
        '/inbox\u0085',
        ' https://example.com/',
        'https:/example.com',
        'http://0x7f.1/',
        '',
      ];
      await nothingStored(async () => {
        for (const linkUrl of refused) {
          const r = await send({ linkUrl });
          assertError(r, 400, 40001);
          assert.deepEqual(r.body.data, { in: 'body', field: '/linkUrl' }, linkUrl);
          assert.match(r.body.message, /^body\/linkUrl must/, linkUrl);
        }
      });
      for (const linkUrl of ['/inbox/1?x=1#y', 'https://example.com/a', 'http://example.com']) {
        const r = await send({ linkUrl });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const id = (r.body.data as { messageId: number }).messageId;
        const recipient = await t.app.tokens.issue(701, 'user');
        const item = await t.request<{ linkUrl: string }>('GET', `/api/v1/messages/${id}`, {
          token: recipient.token,
        });
        assert.equal(item.body.data.linkUrl, linkUrl);
      }
    });

    it('tells a non-admin sender only that some targets are unknown, the same whatever the ids', async () => {
      const answers = await nothingStored(async () => {
        const out: Array<Res<unknown>> = [];
        for (const targetIds of [[701, 9001], [9001], [9001, 9002, 9003], [9999]])
          out.push(await send({ targetIds }));
        return out;
      });
      for (const r of answers) {
        assertError(r, 400, 40003);
        assert.deepEqual(r.body, answers[0]?.body);
        assert.equal(r.body.data, null);
        assert.doesNotMatch(r.body.message, /\d/);
      }
    });

    it('lists the unknown target ids to an admin', async () => {
      const r = await nothingStored(() => send({ targetIds: [701, 9001, 9002] }, t.adminToken));
      assertError(r, 400, 40003);
      assert.deepEqual(r.body.data, { unknownIds: [9001, 9002] });
      assert.match(r.body.message, /9001, 9002/);
    });
  });
}
