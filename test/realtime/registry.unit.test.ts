/**
 * Issue #12 item 4, registry.ts: caps with reservations, the two maps kept in step, presence changes
 * told once per user, and the close code counted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetrics } from '../../src/metrics.ts';
import { Registry } from '../../src/realtime/registry.ts';
import { parts } from './parts.ts';

function registry(maxConnections: number, maxConnectionsPerUser: number) {
  const changes: Array<[number, boolean]> = [];
  const metrics = createMetrics({ defaultMetrics: false });
  const r = new Registry({
    realtime: { maxConnections, maxConnectionsPerUser },
    metrics,
    onPresenceChange: (u, online) => changes.push([u, online]),
  });
  return { r, changes, metrics };
}

describe('registry', () => {
  it('reservations count against both caps until released (once)', () => {
    const { r } = registry(3, 2);
    const a = r.reserve(1);
    const b = r.reserve(1);
    assert.ok(a.ok && b.ok);
    assert.deepEqual(r.reserve(1), { ok: false, reason: 'user-full' });
    const c = r.reserve(2);
    assert.ok(c.ok);
    assert.deepEqual(r.reserve(3), { ok: false, reason: 'node-full' });
    if (a.ok) {
      a.release();
      a.release(); // idempotent
    }
    assert.ok(r.reserve(1).ok);
    assert.deepEqual(r.reserve(3), { ok: false, reason: 'node-full' });
  });

  it('registered connections count against the caps', () => {
    const p = parts();
    const { r } = registry(10, 1);
    const { c } = p.connection(5);
    r.register(c);
    assert.deepEqual(r.reserve(5), { ok: false, reason: 'user-full' });
  });

  it('keeps both maps in step; presence changes on the first and last connection only', async () => {
    const p = parts();
    const { r, changes, metrics } = registry(10, 10);
    const a = p.connection(1).c;
    const b = p.connection(1).c;
    r.register(a);
    r.register(b);
    assert.equal(r.size, 2);
    assert.deepEqual([...r.ofUser(1)], [a, b]);
    assert.deepEqual(await r.onlineUserIds(), [1]);
    r.unregister(a, 1006, 0);
    r.unregister(a, 1006, 0); // twice: nothing more
    assert.deepEqual([...r.ofUser(1)], [b], 'exactly this connection removed');
    assert.equal(a.state, 'closing');
    assert.equal(await r.isOnline(1), true);
    b.close({ code: 4009, reason: 'slow consumer', action: 'reconnect' }, 0);
    r.unregister(b, 1006, 0);
    assert.equal(r.size, 0);
    assert.equal(await r.isOnline(1), false);
    assert.deepEqual(r.localUserIds(), []);
    assert.deepEqual(changes, [
      [1, true],
      [1, false],
    ]);
    const codes = (await metrics.wsDisconnects.get()).values.map((v) => [v.labels['code'], v.value]);
    assert.deepEqual(
      codes.sort(),
      [
        ['1006', 1],
        ['4009', 1],
      ],
      'the code this side closed with, when it closed first',
    );
  });
});
