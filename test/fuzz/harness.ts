/**
 * The fuzz suite's target and its oracles: a real skypush process (SQLite in a temp folder, log
 * captured), the users and tokens the generators use, and the checks run after every batch: the process
 * is alive, /healthz answers 200, a well-behaved client still connects and receives a message sent over
 * REST, and the log holds no uncaught error and no fatal line.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, loginAdmin, startNode, type NodeProcess } from '../helpers/node-process.ts';
import { mint } from '../helpers/tokens.ts';
import { connect } from '../helpers/ws-client.ts';

/** Ids the fuzzed requests never name, so no fuzzed PATCH or bulk upsert can disable or demote them. */
export const IDS = {
  fuzzUser: 900_000_001,
  fuzzAdmin: 900_000_002,
  checkUser: 900_000_003,
  checkAdmin: 900_000_004,
};

export interface Tokens {
  user: string;
  admin: string;
  /** Well-formed but signed with another secret. */
  forged: string;
  /** Signed correctly, expired. */
  expired: string;
}

export interface FuzzServer {
  node: NodeProcess;
  port: number;
  tokens: Tokens;
  /** False once the process has exited. */
  alive(): boolean;
  /** Resolves when the process exits. */
  exited: Promise<void>;
  /** The event cursor the last well-behaved client was given (a real `<epoch>.<seq>`). */
  cursor: string;
  /** Asserts the four liveness oracles; `after` names the batch in the failure message. */
  check(after: string): Promise<void>;
  close(): Promise<void>;
}

/** Log lines that mean input reached a last-resort handler, or a fatal-level line. */
const FATAL_LINE = /uncaught ?exception|unhandled ?rejection|"level":60\b/i;

export async function startFuzzServer(env: Record<string, string> = {}): Promise<FuzzServer> {
  const dir = mkdtempSync(join(tmpdir(), 'skypush-fuzz-'));
  let node: NodeProcess;
  try {
    node = await startNode({
      SKYPUSH_DATABASE_URL: `sqlite:${join(dir, 'skypush.db')}`,
      SKYPUSH_DATA_DIR: dir,
      SKYPUSH_SHUTDOWN_DRAIN_MS: '0',
      SKYPUSH_MAX_CONNECTIONS_PER_USER: '10000',
      ...env,
    });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const port = Number(new URL(node.url).port);
  // Should the test process end without its after() hook (a timeout, a signal), the server goes too.
  const orphan = () => node.proc.kill('SIGKILL');
  process.once('exit', orphan);
  const alive = () => node.proc.exitCode === null && node.proc.signalCode === null;
  const exited = new Promise<void>((resolve) => {
    if (!alive()) resolve();
    node.proc.once('exit', () => resolve());
  });
  const close = async () => {
    process.off('exit', orphan);
    if (alive()) await node.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  let tokens: Tokens;
  try {
    tokens = await prepareUsers(node);
  } catch (e) {
    await close();
    throw e;
  }
  async function check(after: string): Promise<void> {
    const where = `after ${after}`;
    assert.equal(node.proc.exitCode, null, `${where}: the server exited\n${tail(node.output)}`);
    assert.equal(node.proc.signalCode, null, `${where}: the server was killed\n${tail(node.output)}`);
    const health = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(5000) }).catch(
      (e: unknown) => assert.fail(`${where}: /healthz did not answer: ${String(e)}`),
    );
    assert.equal(health.status, 200, `${where}: /healthz answered ${health.status}`);
    self.cursor = await wellBehavedClient(node, where);
    // The whole log every time: a line may straddle two chunks.
    const bad = node.output
      .join('')
      .split('\n')
      .filter((l) => FATAL_LINE.test(l));
    assert.deepEqual(bad, [], `${where}: the log shows an uncaught error or a fatal line`);
  }

  const self: FuzzServer = {
    node,
    port,
    tokens,
    cursor: '',
    alive,
    exited,
    check,
    close,
  };
  try {
    await check('start-up');
  } catch (e) {
    await self.close();
    throw e;
  }
  return self;
}

/** Creates the fuzzing and checking users (ids the generators never name) and their tokens. */
async function prepareUsers(node: NodeProcess): Promise<Tokens> {
  const bootstrap = await loginAdmin(node.url);
  const bulk = await api(node.url, 'POST', '/api/v1/users/bulk', {
    token: bootstrap,
    body: {
      users: [
        { id: IDS.fuzzUser, username: 'fuzz-user' },
        { id: IDS.fuzzAdmin, username: 'fuzz-admin', role: 'admin' },
        { id: IDS.checkUser, username: 'check-user' },
        { id: IDS.checkAdmin, username: 'check-admin', role: 'admin' },
      ],
    },
  });
  assert.equal(bulk.status, 200, JSON.stringify(bulk.body));
  return {
    user: await mint(IDS.fuzzUser),
    admin: await mint(IDS.fuzzAdmin, 'admin'),
    forged: `${(await mint(IDS.fuzzAdmin, 'admin')).slice(0, -8)}AAAAAAAA`,
    expired: await mint(IDS.fuzzUser, 'user', Math.floor(Date.now() / 1000) - 60),
  };
}

/** A real `ws` client, authenticated, receives a message sent over REST; returns its CONNECTED cursor. */
async function wellBehavedClient(node: NodeProcess, where: string): Promise<string> {
  const s = await connect(node.wsUrl, { token: await mint(IDS.checkUser), via: 'subprotocol' }).catch(
    (e: unknown) => assert.fail(`${where}: a well-behaved client could not connect: ${String(e)}`),
  );
  try {
    const connected = await s.waitFor((f) => f.type === 'CONNECTED', 5000);
    const title = `check-${randomBytes(6).toString('hex')}`;
    const sent = await api(node.url, 'POST', '/api/v1/messages/send', {
      token: await mint(IDS.checkAdmin, 'admin'),
      body: { title, content: 'still here', targetType: 'user', targetIds: [IDS.checkUser] },
    });
    assert.equal(sent.status, 200, `${where}: a well-formed send answered ${sent.status}`);
    await s.waitFor((f) => f.type === 'NEW_MESSAGE' && f.data['title'] === title, 5000);
    return String(connected.data['cursor']);
  } finally {
    await s.close();
  }
}

/** The last lines of the server's output, for a failure message. */
export function tail(output: string[], lines = 40): string {
  return output.join('').split('\n').slice(-lines).join('\n');
}
