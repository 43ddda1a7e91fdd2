/**
 * Fuzz: raw WebSocket handshakes against a real skypush process. Every answer is a 101 or a non-5xx
 * refusal, no socket is upgraded without a valid credential, and after every batch the server is alive
 * and serving (see harness.ts). Seed and budget: see runner.ts.
 */
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { api } from '../helpers/node-process.ts';
import { startFuzzServer, type FuzzServer } from './harness.ts';
import { assertSurvived, judgeResponse } from './oracle.ts';
import { closeFrame, exchange, parseResponses, showBytes } from './raw.ts';
import { Findings, fuzz, testTimeout } from './runner.ts';
import { handshakeArb, renderHandshake, type HandshakeCase, type Resolved } from './ws-gen.ts';

/** Whether any credential in the handshake could be valid (else a 101 is a hole). */
function offersValidCredential(h: HandshakeCase): boolean {
  const good = (v: string) => v === 'user' || v === 'admin' || v === 'ticket';
  if (h.credIn === 'ticket') return true;
  if (h.credIn !== 'nowhere' && (h.cred === 'user' || h.cred === 'admin')) return true;
  return h.query.some(([k, v]) => /^(token|ticket|%74oken)$/i.test(k) && good(v));
}

describe('fuzz: raw WebSocket handshakes against a real server', () => {
  let server: FuzzServer;
  let resolved: Resolved;
  before(async () => {
    server = await startFuzzServer();
    resolved = {
      tokens: server.tokens,
      get cursor() {
        return server.cursor;
      },
      // A failed fetch (the server died meanwhile) still sends the handshake: the oracle names the death.
      ticket: async () => {
        const r = await api<{ ticket: string }>(server.node.url, 'POST', '/api/v1/ws/ticket', {
          token: server.tokens.user,
        }).catch(() => undefined);
        return r?.status === 200 ? r.body.data.ticket : 'no-ticket';
      },
    };
  });
  after(async () => server?.close());

  async function send(h: HandshakeCase, findings: Findings) {
    const bytes = await renderHandshake(h, resolved);
    findings.requests++;
    let closing = false;
    const headEnd = (d: Buffer) => d.indexOf('\r\n\r\n');
    const ex = await exchange(server.port, [bytes], {
      timeoutMs: 3000,
      onData: (d) => {
        if (closing || !/^HTTP\/1\.1 101/.test(d.toString('latin1', 0, 12)) || headEnd(d) < 0)
          return undefined;
        closing = true;
        return closeFrame(1000);
      },
      done: (d) => {
        const r = parseResponses(d, h.method === 'HEAD');
        return r.some((x) => x.status >= 200 && x.status !== 101) || (closing && d.length > headEnd(d) + 4);
      },
    });
    return { h, bytes, ex };
  }

  it(
    'answers every handshake with a 101 or a non-5xx refusal and keeps serving',
    { timeout: testTimeout() },
    async (t) => {
      const findings = new Findings();
      await fuzz(t, {
        name: 'handshake',
        server,
        arb: fc.array(handshakeArb, { minLength: 1, maxLength: 6 }),
        runsPerBatch: 40,
        run: async (group) => {
          const sent = await Promise.all(group.map((h) => send(h, findings)));
          await assertSurvived(server, sent);
          for (const { h, bytes, ex } of sent) {
            for (const r of parseResponses(ex.data, h.method === 'HEAD')) {
              judgeResponse(r, bytes, findings, h.method === 'HEAD');
              if (r.status === 101 && !offersValidCredential(h))
                throw new Error(`upgraded without a valid credential:\n${showBytes(bytes)}`);
            }
          }
        },
        findings,
      });
    },
  );
});
