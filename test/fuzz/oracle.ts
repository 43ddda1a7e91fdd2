/** What every HTTP answer must satisfy, shared by the request and handshake fuzzers. */
import type { FuzzServer } from './harness.ts';
import { tail } from './harness.ts';
import { isEnvelope, showBytes, type Exchange, type ParsedResponse } from './raw.ts';
import type { Findings } from './runner.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The server is still running after a group of exchanges sent side by side. If it died, every input of
 * the group is named, those that got no answer first (a request that kills the process synchronously
 * gets none; a frame may follow a complete handshake); the log tail shows the crash.
 */
export async function assertSurvived(
  server: FuzzServer,
  sent: Array<{ bytes: Buffer; ex: Exchange; label?: string }>,
): Promise<void> {
  const silent = (ex: Exchange) => ex.data.length === 0 || ex.error === 'ECONNREFUSED';
  if (sent.some(({ ex }) => silent(ex))) await Promise.race([server.exited, sleep(200)]);
  if (server.alive() && !sent.some(({ ex }) => ex.error === 'ECONNREFUSED')) return;
  const ordered = [...sent.filter(({ ex }) => silent(ex)), ...sent.filter(({ ex }) => !silent(ex))];
  const inputs = ordered.map(
    ({ bytes, ex, label }) => `${silent(ex) ? '[no answer] ' : ''}${label ?? showBytes(bytes)}`,
  );
  throw new Error(
    `the server process ${server.alive() ? 'refused connections' : 'died'} on one of these inputs:\n${inputs.join('\n  or\n')}\n--- server log ---\n${tail(server.node.output)}`,
  );
}

/**
 * No 5xx for anything a client sends (a 503 that says when to come back is an overload answer, not an
 * error). A 4xx without the envelope is a filed, tolerated issue (Node/Fastify's own shape).
 */
export function judgeResponse(r: ParsedResponse, sent: Buffer, findings: Findings, isHead: boolean): void {
  findings.status(r.status);
  const overload = r.status === 503 && r.headers['retry-after'] !== undefined && isEnvelope(r.body);
  if (r.status >= 500 && !overload)
    throw new Error(`HTTP ${r.status} ${showBytes(r.body, 300)}\nfor this request:\n${showBytes(sent)}`);
  if (r.status >= 400 && !isHead && !isEnvelope(r.body)) {
    const shape = r.body.includes('"statusCode"') ? "Node/Fastify's JSON shape" : 'plain text or empty';
    findings.knownIssue(
      `${r.status} answered without the {code,message} envelope (${shape})`,
      () => `${showBytes(r.body, 200)} for ${showBytes(sent, 300)}`,
    );
  }
}
