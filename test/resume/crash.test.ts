import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIALECTS, createDatabase } from '../helpers/app.ts';
import { api, freePort, loginAdmin, startNode } from '../helpers/node-process.ts';
import { ResumingClient } from '../helpers/resuming-client.ts';
import { mint } from '../helpers/tokens.ts';

for (const dialect of DIALECTS) {
  describe(`${dialect}: kill -9 mid-traffic`, () => {
    it('loses no acknowledged message and the client resumes with no gap or duplicate', async () => {
      const db = await createDatabase(dialect);
      const port = String(await freePort());
      const env = { ...db.env, SKYPUSH_PORT: port };
      let node = await startNode(env);
      try {
        const admin = await loginAdmin(node.url);
        const created = await api<{ id: number }>(node.url, 'POST', '/api/v1/users', {
          token: admin,
          body: { username: 'crash', id: 7001 },
        });
        assert.equal(created.status, 201);
        const token = await mint(7001);
        const client = new ResumingClient(node.wsUrl, token);
        await client.connect();

        const acked: number[] = [];
        let running = true;
        const sender = async () => {
          while (running) {
            try {
              const r = await api<{ messageId: number }>(node.url, 'POST', '/api/v1/messages/send', {
                token: admin,
                body: { title: 't', content: 'c', targetType: 'user', targetIds: [7001] },
              });
              if (r.status === 200) acked.push(r.body.data.messageId);
            } catch {
              return; // the server died under us
            }
          }
        };
        const senders = [sender(), sender(), sender()];
        await client.until(() => acked.length >= 30, 10_000, '30 acknowledged sends');
        await node.kill();
        running = false;
        await Promise.all(senders);

        node = await startNode(env);
        await client.connect();
        for (let i = 0; i < 5; i++) {
          const r = await api<{ messageId: number }>(node.url, 'POST', '/api/v1/messages/send', {
            token: admin,
            body: { title: 'after', content: 'c', targetType: 'user', targetIds: [7001] },
          });
          acked.push(r.body.data.messageId);
        }
        const stored: number[] = [];
        let cursor: string | null = null;
        do {
          const page: { body: { data: { items: Array<{ id: number }>; nextCursor: string | null } } } =
            await api(node.url, 'GET', `/api/v1/messages?limit=100${cursor ? `&cursor=${cursor}` : ''}`, {
              token,
            });
          stored.push(...page.body.data.items.map((i) => i.id));
          cursor = page.body.data.nextCursor;
        } while (cursor);
        for (const id of acked)
          assert.ok(stored.includes(id), `acknowledged message ${id} survived the crash`);
        await client.until(() => client.newMessageIds().length >= stored.length, 10_000, 'client caught up');
        const got = client.newMessageIds();
        assert.equal(new Set(got).size, got.length, 'no duplicates');
        assert.deepEqual(
          [...got].sort((a, b) => a - b),
          [...stored].sort((a, b) => a - b),
          'client has exactly the stored messages',
        );
        await client.close();
      } finally {
        await node.kill();
        await db.cleanup();
      }
    });
  });
}
