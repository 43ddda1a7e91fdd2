/**
 * Issue #11 item 2, unit level: inbound frames are bounded before they are parsed. The raw scan finds
 * the nesting depth and the bytes of `data` as sent (strings, escapes and multi-byte UTF-8 included),
 * and parseInbound refuses deep, large and non-object data with the documented ERROR codes — without
 * recursing, so the 5,000-level frame of the report costs one linear pass.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FrameErrorCode, INBOUND_LIMITS } from '../../src/protocol.ts';
import { parseInbound } from '../../src/realtime/codec.ts';
import { scanJson } from '../../src/realtime/json-shape.ts';

const scan = (text: string, maxDepth = 64) => scanJson(Buffer.from(text), maxDepth);
const nest = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
const codeOf = (text: string) => {
  const r = parseInbound(text);
  return r.ok ? 'ok' : r.code;
};

/** Nesting of a parsed JSON value (a scalar is 0, `[]` is 1). */
function depthOf(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...children.map(depthOf));
}

describe('scanJson', () => {
  it('measures the top-level data value as sent, in bytes', () => {
    assert.deepEqual(scan('{"type":"X","data":{"a":1}}'), { depth: 2, dataBytes: 7, tooDeep: false });
    assert.equal(scan('{"type":"X","data" :  [1, 2]  ,"timestamp":1}').dataBytes, 6);
    assert.equal(scan('{"data":"é€"}').dataBytes, 2 + 2 + 3, 'UTF-8 bytes, not characters');
    assert.equal(scan('{"data":12345}').dataBytes, 5);
    assert.equal(scan('{"data":null}').dataBytes, 4);
    assert.equal(scan('{"type":"X"}').dataBytes, 0, 'absent');
  });

  it('recognises only the top-level key "data", however it is spelled', () => {
    assert.equal(scan('{"\\u0064ata":"abc"}').dataBytes, 5, 'an escaped key is the same key to JSON.parse');
    assert.equal(scan('{"type":"data","x":"abcdef"}').dataBytes, 0, '"data" as a value is not a key');
    assert.equal(scan('{"x":{"data":"abcdef"}}').dataBytes, 0, 'a nested "data" is not the frame\'s');
    assert.equal(scan('{"data":"ab","data":"abcdef"}').dataBytes, 8, 'the largest of duplicate keys');
  });

  it('ignores brackets, quotes and escapes inside strings', () => {
    assert.deepEqual(scan('{"data":"[[[{{\\"\\\\"}'), { depth: 1, dataBytes: 11, tooDeep: false });
    assert.equal(scan('{"a":"\\"]]]"}').depth, 1);
  });

  it('counts nesting across the whole frame and stops at maxDepth + 1', () => {
    assert.equal(scan(`{"data":${nest(15)}}`, 16).depth, 16);
    assert.deepEqual(scan(`{"data":${nest(16)}}`, 16), { depth: 17, dataBytes: 0, tooDeep: true });
    assert.equal(scan(`{"other":${nest(40)}}`, 16).tooDeep, true, 'not only inside data');
    assert.equal(scan(nest(5000), 16).tooDeep, true);
  });

  it('agrees with JSON.stringify on every compact frame (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.string(), (data, type) => {
        const text = JSON.stringify({ type, data });
        const shape = scanJson(Buffer.from(text), 64);
        assert.equal(shape.dataBytes, Buffer.byteLength(JSON.stringify(data)));
        assert.equal(shape.depth, 1 + depthOf(data));
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on malformed text', () => {
    for (const text of [
      '',
      '{',
      '}}}]]]',
      '{"data":',
      '{"data":"unterminated',
      '"\\',
      '{"\\u00',
      '[{"data":1}]',
    ])
      assert.doesNotThrow(() => scan(text));
  });
});

describe('parseInbound', () => {
  it('refuses the 5,000-level frame of the report as TOO_DEEP, before parsing it', () => {
    assert.equal(codeOf(`{"type":"HEARTBEAT","data":${nest(5000)}}`), FrameErrorCode.TOO_DEEP);
    assert.equal(codeOf(nest(100_000)), FrameErrorCode.TOO_DEEP);
  });

  it('accepts nesting up to maxDepth, the envelope included', () => {
    const inner = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
    const max = INBOUND_LIMITS.maxDepth;
    assert.equal(codeOf(`{"type":"HEARTBEAT","data":${inner(max - 1)}}`), 'ok');
    assert.equal(codeOf(`{"type":"HEARTBEAT","data":${inner(max)}}`), FrameErrorCode.TOO_DEEP);
  });

  it('bounds data by its raw size, whitespace included, and not by re-serialising it', () => {
    const pad = (n: number) => `{"type":"HEARTBEAT_REPLY","data":{"p":"${'x'.repeat(n)}"}}`;
    // {"p":"…"} is 8 bytes around the padding.
    assert.equal(codeOf(pad(INBOUND_LIMITS.maxDataBytes - 8)), 'ok');
    assert.equal(codeOf(pad(INBOUND_LIMITS.maxDataBytes - 7)), FrameErrorCode.DATA_TOO_LARGE);
    const spaced = `{"type":"HEARTBEAT","data":{${' '.repeat(INBOUND_LIMITS.maxDataBytes)}}}`;
    assert.equal(codeOf(spaced), FrameErrorCode.DATA_TOO_LARGE);
    const escaped = `{"type":"HEARTBEAT","\\u0064ata":"${'y'.repeat(INBOUND_LIMITS.maxDataBytes)}"}`;
    assert.equal(codeOf(escaped), FrameErrorCode.DATA_TOO_LARGE);
  });

  it('wants object data for the heartbeat types; null or absent is accepted (seed clients)', () => {
    for (const type of ['HEARTBEAT', 'HEARTBEAT_REPLY']) {
      assert.equal(codeOf(`{"type":"${type}","data":{"ping":"pong"}}`), 'ok');
      assert.equal(codeOf(`{"type":"${type}","data":null}`), 'ok');
      assert.equal(codeOf(`{"type":"${type}"}`), 'ok');
      for (const data of ['[]', '"ping"', '1', 'true', '[{"a":1}]'])
        assert.equal(codeOf(`{"type":"${type}","data":${data}}`), FrameErrorCode.BAD_DATA, data);
    }
  });

  it('takes the raw bytes as ws delivers them', () => {
    const r = parseInbound(Buffer.from('{"type":"HEARTBEAT","data":{"note":"ünï"}}'));
    assert.deepEqual(r, { ok: true, type: 'HEARTBEAT', data: { note: 'ünï' } });
  });

  it('keeps the earlier codes for everything else', () => {
    assert.equal(codeOf('nope'), FrameErrorCode.BAD_JSON);
    assert.equal(codeOf('[1]'), FrameErrorCode.BAD_FRAME);
    assert.equal(codeOf('{"type":1}'), FrameErrorCode.BAD_FRAME);
    assert.equal(codeOf(`{"type":"${'T'.repeat(51)}"}`), FrameErrorCode.TYPE_TOO_LONG);
    assert.equal(codeOf('{"type":"SUBSCRIBE","data":[]}'), FrameErrorCode.UNKNOWN_TYPE);
  });
});
