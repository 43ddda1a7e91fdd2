/**
 * Issue #3 item 11: docs/PROTOCOL.md cannot drift from src/protocol.ts. Every frame type has a valid
 * JSON example, every ERROR code is listed, and every close code has a table row with its number, name,
 * reason and client action.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CloseCode, FrameErrorCode, FrameType, InboundType } from '../../src/protocol.ts';

const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');

/** Every ```json block of the page, parsed (a block that is not JSON fails the test). */
const examples: Array<{ type?: unknown; data?: unknown; timestamp?: unknown }> = [
  ...doc.matchAll(/```json\n([\s\S]*?)```/g),
].map((m) => JSON.parse(m[1] as string));

const tableRows = doc.split('\n').filter((l) => l.startsWith('|'));
const cells = (row: string) => row.split('|').map((c) => c.trim().replace(/`/g, ''));

describe('docs/PROTOCOL.md', () => {
  it('has a heading and a valid JSON example in the seed envelope for every frame type', () => {
    for (const type of Object.values(FrameType)) {
      assert.match(doc, new RegExp(`^#### ${type}$`, 'm'), `no section for ${type}`);
      const example = examples.find((e) => e.type === type);
      assert.ok(example, `no JSON example for ${type}`);
      assert.equal(typeof example.data, 'object', `${type} example has no data object`);
      assert.ok(Number.isInteger(example.timestamp), `${type} example has no unix-seconds timestamp`);
    }
  });

  it('documents every client → server type', () => {
    const inbound = doc.slice(doc.indexOf('### Client → server'), doc.indexOf('## Heartbeat'));
    for (const type of Object.values(InboundType)) assert.match(inbound, new RegExp(`#### ${type}\\b`));
  });

  it('lists every ERROR frame code', () => {
    for (const code of Object.values(FrameErrorCode)) {
      assert.ok(
        tableRows.some((r) => cells(r)[1] === code),
        `ERROR code ${code} is not in a table`,
      );
    }
  });

  it('has a close-code row with number, name, reason and action for every close code', () => {
    for (const [name, spec] of Object.entries(CloseCode)) {
      const row = tableRows.find((r) => cells(r)[1] === String(spec.code));
      assert.ok(row, `close code ${spec.code} (${name}) has no table row`);
      const [, code, rowName, reason, , action] = cells(row);
      assert.equal(code, String(spec.code));
      assert.equal(rowName, name, `row for ${spec.code}`);
      assert.equal(reason, spec.reason, `reason for ${name}`);
      assert.equal(action, spec.action, `action for ${name}`);
    }
  });

  it('keeps the section the lead fills in on cursors and resume', () => {
    assert.match(doc, /^## Cursors, resume and RESYNC$/m);
  });
});
