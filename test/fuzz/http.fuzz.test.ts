/**
 * Fuzz: raw HTTP requests on every route of a real skypush process, with and without valid admin and
 * user tokens, several at a time on separate connections. After every batch the server must be alive and
 * serving (see harness.ts); no request may get a 5xx. Seed and budget: see runner.ts.
 */
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startFuzzServer, type FuzzServer } from './harness.ts';
import { httpCaseArb, renderHttp, type HttpCase } from './http-gen.ts';
import { assertSurvived, judgeResponse } from './oracle.ts';
import { exchange, parseResponses, showBytes, type Exchange } from './raw.ts';
import { Findings, fuzz, testTimeout } from './runner.ts';
import { readSurface, type Surface } from './surface.ts';

describe('fuzz: raw HTTP requests against a real server', () => {
  let server: FuzzServer;
  let surface: Surface;
  before(async () => {
    surface = await readSurface();
    server = await startFuzzServer();
  });
  after(async () => server?.close());

  async function send(c: HttpCase, findings: Findings): Promise<{ bytes: Buffer; ex: Exchange }> {
    const bytes = renderHttp(c, server.tokens);
    findings.requests++;
    const ex = await exchange(server.port, [bytes], { halfClose: true, timeoutMs: 4000 });
    return { bytes, ex };
  }

  function judge(c: HttpCase, { bytes, ex }: { bytes: Buffer; ex: Exchange }, findings: Findings): void {
    const isHead = c.method === 'HEAD';
    for (const r of parseResponses(ex.data, isHead)) {
      judgeResponse(r, bytes, findings, isHead);
      const offeredH2c = c.headers.some(([k, v]) => /^upgrade$/i.test(k) && /h2c/i.test(v));
      if (offeredH2c && r.status === 404 && r.body.includes('no WebSocket endpoint'))
        findings.knownIssue('Upgrade: h2c taken by the WebSocket handler (404)', () => showBytes(bytes, 300));
    }
  }

  it(
    'answers every request with a non-5xx status and keeps serving',
    { timeout: testTimeout() },
    async (t) => {
      const findings = new Findings();
      await fuzz(t, {
        name: 'http',
        server,
        arb: fc.array(httpCaseArb(surface), { minLength: 1, maxLength: 6 }),
        runsPerBatch: 30,
        run: async (group) => {
          const sent = await Promise.all(group.map((c) => send(c, findings)));
          await assertSurvived(server, sent);
          group.forEach((c, i) => judge(c, sent[i] as (typeof sent)[number], findings));
        },
        findings,
      });
    },
  );
});
