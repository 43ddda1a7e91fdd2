/**
 * Fuzz: raw WebSocket frames on authenticated connections to a real skypush process, sent with the
 * handshake, before CONNECTED, after it, and after our close frame. The server may answer with ERROR
 * frames or close with a documented code (or echo the code we sent), never 1011, and after every batch
 * it is alive and serving (see harness.ts). Seed and budget: see runner.ts.
 */
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { CloseCode } from '../../src/protocol.ts';
import { startFuzzServer, type FuzzServer } from './harness.ts';
import { assertSurvived } from './oracle.ts';
import {
  closeCodeOf,
  closeFrame,
  decodeFrames,
  describeFrames,
  exchange,
  showBytes,
  type ServerFrame,
} from './raw.ts';
import { Findings, fuzz, testTimeout } from './runner.ts';
import { frameCaseArb, renderFrames, validHandshake, type FrameCase } from './ws-gen.ts';

const DOCUMENTED = new Set(Object.values(CloseCode).map((c) => c.code));

/** Close codes a client may send (RFC 6455 7.4): the server may echo these. */
const sendable = (code: number) =>
  (code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999);

describe('fuzz: raw WebSocket frames against a real server', () => {
  let server: FuzzServer;
  before(async () => {
    server = await startFuzzServer();
  });
  after(async () => server?.close());

  async function send(c: FrameCase, findings: Findings) {
    const token = c.cred === 'admin' ? server.tokens.admin : server.tokens.user;
    const hs = validHandshake(token, c.resume ? server.cursor : undefined);
    const frames = renderFrames(c.frames);
    findings.requests++;
    let sent = c.moment === 'with-handshake';
    let serverFrames: ServerFrame[] = [];
    const ex = await exchange(server.port, sent ? [hs, frames] : [hs], {
      timeoutMs: 3000,
      idleMs: 250,
      onData: (d) => {
        const end = d.indexOf('\r\n\r\n');
        if (end < 0) return undefined;
        serverFrames = decodeFrames(d.subarray(end + 4));
        if (sent) return undefined;
        const connected = serverFrames.some((f) => f.opcode === 1 && f.payload.includes('"CONNECTED"'));
        if (c.moment === 'before-connected' || connected) {
          sent = true;
          return c.moment === 'after-close' ? Buffer.concat([closeFrame(1000), frames]) : frames;
        }
        return undefined;
      },
      done: () => serverFrames.some((f) => f.opcode === 8),
    });
    const label = `${showBytes(hs, 400)} then (${c.moment}):\n${describeFrames(c.frames)}`;
    return { c, bytes: Buffer.concat([hs, frames]), label, ex, serverFrames };
  }

  function judge(r: Awaited<ReturnType<typeof send>>, findings: Findings): void {
    const status = /^HTTP\/1\.1 (\d{3})/.exec(r.ex.data.toString('latin1', 0, 12))?.[1];
    if (status !== '101' && r.ex.data.length > 0)
      throw new Error(`a valid handshake got ${showBytes(r.ex.data, 300)}\nfor:\n${r.label}`);
    const code = closeCodeOf(r.serverFrames);
    if (code === undefined) return;
    findings.status(code);
    // ws answers a client's close frame with the same code: only the first close we sent can be echoed.
    const ours = r.c.frames.find((f) => f.opcode === 8 && f.payload.length >= 2);
    const firstClose = r.c.moment === 'after-close' ? 1000 : ours?.payload.readUInt16BE(0);
    const echoed = code === firstClose && sendable(code);
    if (!echoed && (code === CloseCode.INTERNAL_ERROR.code || !DOCUMENTED.has(code)))
      throw new Error(`closed with ${code} (${r.c.moment}) after:\n${r.label}`);
  }

  it(
    'answers every frame with an ERROR frame or a documented close and keeps serving',
    { timeout: testTimeout() },
    async (t) => {
      const findings = new Findings();
      await fuzz(t, {
        name: 'frames',
        server,
        arb: fc.array(frameCaseArb, { minLength: 1, maxLength: 6 }),
        runsPerBatch: 25,
        run: async (group) => {
          const sent = await Promise.all(group.map((c) => send(c, findings)));
          await assertSurvived(server, sent);
          for (const r of sent) judge(r, findings);
        },
        findings,
      });
    },
  );
});
