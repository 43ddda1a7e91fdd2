/**
 * Issue #3 item 10: graceful shutdown. Open sockets are closed with 1012 "service restart", new upgrades
 * are refused with 503 while the drain lasts, and a SIGTERM'd process exits 0 within the drain time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CloseCode } from '../../src/protocol.ts';
import { startApp } from '../helpers/app.ts';
import { freePort, loginAdmin, startNode } from '../helpers/node-process.ts';
import { refused, waitUntil } from '../helpers/realtime.ts';
import { connect, type TestSocket } from '../helpers/ws-client.ts';

const DRAIN_MS = 1500;

/** A client that never reads again, so it never answers the close frame and the drain has to wait. */
async function stuckClient(wsUrl: string, token: string): Promise<TestSocket> {
  const s = await connect(wsUrl, { token });
  await s.waitFor((f) => f.type === 'UNREAD_COUNT');
  (s.ws as unknown as { _socket: Socket })._socket.pause();
  return s;
}

describe('shutdown', () => {
  it('app.close(): closes sockets with 1012, refuses upgrades with 503 during the drain, then stops', async () => {
    const t = await startApp({ env: { SKYPUSH_SHUTDOWN_DRAIN_MS: String(DRAIN_MS) } });
    try {
      const sock = await connect(t.wsUrl, { token: t.adminToken });
      await sock.waitFor((f) => f.type === 'CONNECTED');
      const stuck = await stuckClient(t.wsUrl, t.adminToken);

      const started = Date.now();
      const closing = t.app.close();
      const closed = await sock.closed;
      assert.equal(closed.code, CloseCode.SERVICE_RESTART.code);
      assert.equal(closed.reason, CloseCode.SERVICE_RESTART.reason);

      // Still draining (the stuck client holds it open): upgrades are refused, readiness fails.
      const r = await refused(t.wsUrl, { token: t.adminToken });
      assert.equal(r.status, 503);
      assert.equal(r.body.code, 50302);
      assert.ok(Number(r.headers['retry-after']) > 0);
      assert.equal((await t.request('GET', '/readyz')).status, 503);

      await closing;
      const took = Date.now() - started;
      assert.ok(took < DRAIN_MS + 3000, `close took ${took} ms`);
      // The stuck socket was terminated at the deadline; its close event follows at once.
      await waitUntil(() => t.app.hub.size === 0, 1000);
      stuck.ws.terminate();
    } finally {
      await t.close();
    }
  });

  it('SIGTERM: the process closes sockets with 1012, refuses upgrades with 503, and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skypush-sigterm-'));
    try {
      const node = await startNode({
        SKYPUSH_DATABASE_URL: `sqlite:${join(dir, 'skypush.db')}`,
        SKYPUSH_DATA_DIR: dir,
        SKYPUSH_PORT: String(await freePort()),
        SKYPUSH_SHUTDOWN_DRAIN_MS: String(DRAIN_MS),
      });
      const exited = new Promise<number | null>((resolve) => node.proc.once('exit', (code) => resolve(code)));
      const token = await loginAdmin(node.url);
      const sock = await connect(node.wsUrl, { token });
      await sock.waitFor((f) => f.type === 'CONNECTED');
      const stuck = await stuckClient(node.wsUrl, token);

      const started = Date.now();
      node.proc.kill('SIGTERM');
      const closed = await sock.closed;
      assert.equal(closed.code, CloseCode.SERVICE_RESTART.code);
      const r = await refused(node.wsUrl, { token });
      assert.equal(r.status, 503);
      assert.equal(r.body.code, 50302);

      assert.equal(await exited, 0, node.output.join(''));
      const took = Date.now() - started;
      assert.ok(took < DRAIN_MS + 5000, `exit took ${took} ms`);
      assert.match(node.output.join(''), /shutting down/);
      stuck.ws.terminate();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
