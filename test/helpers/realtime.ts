/** Small helpers shared by the realtime suites: refused upgrades, minted tokens, sends, polling. */
import { headSeq } from '../../src/messages/event-log.repository.ts';
import { SignJWT } from 'jose';
import { JWT_SECRET, type TestApp } from './app.ts';
import { connect, type ConnectOptions } from './ws-client.ts';

export interface Refusal {
  status: number;
  body: { code: number; message: string; data: unknown };
  headers: Record<string, string | string[] | undefined>;
}

/** Attempts an upgrade that must be refused; resolves with the HTTP status, parsed body and headers. */
export async function refused(wsUrl: string, o: ConnectOptions = {}): Promise<Refusal> {
  try {
    const sock = await connect(wsUrl, o);
    await sock.close();
  } catch (e) {
    const err = e as { status?: number; body?: string; headers?: Refusal['headers'] };
    if (err.status === undefined) throw e;
    return { status: err.status, body: JSON.parse(err.body ?? 'null'), headers: err.headers ?? {} };
  }
  throw new Error('the upgrade was accepted');
}

/** A token as a host platform mints it (HS256, shared secret); `exp` in unix seconds. */
export function mintToken(
  userId: number,
  o: { exp?: number; role?: 'admin' | 'user'; secret?: string } = {},
): Promise<string> {
  return new SignJWT({ role: o.role ?? 'user' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(String(userId))
    .setIssuedAt()
    .setExpirationTime(o.exp ?? Math.floor(Date.now() / 1000) + 600)
    .sign(new TextEncoder().encode(o.secret ?? JWT_SECRET));
}

/** An unsigned `alg: none` token for `userId`. */
export function unsignedToken(userId: number): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const exp = Math.floor(Date.now() / 1000) + 600;
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: String(userId), role: 'admin', exp })}.`;
}

/** Sends a direct message as the admin; returns its id. */
export async function sendTo(
  t: TestApp,
  targetIds: number[],
  o: { title?: string; content?: string } = {},
): Promise<number> {
  const r = await t.request<{ messageId: number }>('POST', '/api/v1/messages/send', {
    token: t.adminToken,
    body: { title: o.title ?? 'hello', content: o.content ?? 'body', targetType: 'user', targetIds },
  });
  if (r.status !== 200) throw new Error(`send failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.data.messageId;
}

/** Polls `cond` every 10 ms until it holds; throws after `timeoutMs`. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The online user ids as the admin API reports them. */
export async function onlineUsers(t: TestApp): Promise<number[]> {
  const r = await t.request<{ onlineCount: number; users: number[] }>('GET', '/api/v1/ws/online/users', {
    token: t.adminToken,
  });
  if (r.status !== 200) throw new Error(`online/users failed: ${r.status}`);
  return r.body.data.users;
}

/** Creates users `firstId`…`firstId + n - 1` in one bulk call; returns their ids and tokens. */
export async function createUsers(
  t: TestApp,
  firstId: number,
  n: number,
): Promise<Array<{ id: number; token: string }>> {
  const ids = Array.from({ length: n }, (_, i) => firstId + i);
  const r = await t.request('POST', '/api/v1/users/bulk', {
    token: t.adminToken,
    body: { users: ids.map((id) => ({ id, username: `u${id}` })) },
  });
  if (r.status !== 200) throw new Error(`bulk create failed: ${r.status} ${JSON.stringify(r.body)}`);
  return Promise.all(ids.map(async (id) => ({ id, token: (await t.app.tokens.issue(id, 'user')).token })));
}

/** A counter's (or gauge's) value from the app's metrics registry, optionally for one label set. */
export async function metricValue(
  t: TestApp,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = t.app.metrics.registry.getSingleMetric(name);
  if (!m) throw new Error(`no metric ${name}`);
  const { values } = await m.get();
  let sum = 0;
  for (const v of values) {
    const l = v.labels as Record<string, string | number>;
    if (Object.entries(labels).every(([k, want]) => String(l[k]) === want)) sum += v.value;
  }
  return sum;
}

/**
 * Waits until the app's hub has dispatched the whole log: a client that connects after it gets
 * everything so far by replay, none of it live (tests that assert the replay's content need that).
 */
export async function hubCaughtUp(t: TestApp, timeoutMs = 5000): Promise<void> {
  const head = await headSeq(t.app.store.db);
  await waitUntil(() => t.app.hub.tailSeq >= head, timeoutMs);
}
