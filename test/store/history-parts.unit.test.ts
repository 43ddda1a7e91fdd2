/**
 * Issue #13 item 5, the pieces of the history check: the token's comparison rules (an unknown part is
 * not a difference; a part unreadable today keeps its stored value) and the SQLite mark file (private,
 * written whole, ignored when unreadable or about another database).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { markLocation, readHistoryMark, writeHistoryMark } from '../../src/store/history-mark.ts';
import { changedParts, formatToken, mergeToken, parseToken } from '../../src/store/history-token.ts';

describe('history token', () => {
  it('round-trips through its stored form, parts in name order', () => {
    const t = { timeline: '2', system: '7713952995434080367', database: '16384' };
    assert.equal(formatToken(t), 'database=16384;system=7713952995434080367;timeline=2');
    assert.deepEqual(parseToken(formatToken(t)), t);
    assert.deepEqual(parseToken(undefined), {});
    assert.deepEqual(parseToken('garbage;=x;database=5'), { database: '5' });
  });

  it('differs only in parts known on both sides', () => {
    const stored = { system: 'a', database: '1', timeline: '1' };
    assert.deepEqual(changedParts(stored, { system: 'a', database: '1', timeline: '1' }), []);
    assert.deepEqual(changedParts(stored, { system: 'a', database: '2', timeline: '2' }), [
      'database',
      'timeline',
    ]);
    assert.deepEqual(
      changedParts(stored, { database: '1' }),
      [],
      'an unreadable part is unknown, not changed',
    );
    assert.deepEqual(changedParts({}, { system: 'b', database: '9' }), [], 'nothing stored yet: adopt');
  });

  it('keeps a stored part the live check could not read', () => {
    assert.deepEqual(mergeToken({ system: 'a', database: '1' }, { database: '1', timeline: '3' }), {
      system: 'a',
      database: '1',
      timeline: '3',
    });
  });
});

describe('history mark (SQLite)', () => {
  it('is written whole with mode 0600, and read back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skypush-mark-'));
    try {
      const data = join(dir, 'data');
      const where = markLocation(data, join(data, 'skypush.db'));
      const mark = { database: where.database, epoch: 'abcdefabcdef', seq: 42 };
      await writeHistoryMark(data, where.file, mark);
      assert.equal(statSync(where.file).mode & 0o777, 0o600);
      assert.equal(statSync(data).mode & 0o777, 0o700, 'a data folder it creates is private');
      assert.deepEqual(
        readHistoryMark(where.file, () => assert.fail('no warning')),
        mark,
      );
      await writeHistoryMark(data, where.file, { ...mark, seq: 43 });
      assert.equal(JSON.parse(readFileSync(where.file, 'utf8')).seq, 43);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is ignored, with a warning, when it does not parse', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skypush-mark-'));
    try {
      const file = join(dir, 'history-mark.json');
      const warnings: string[] = [];
      assert.equal(
        readHistoryMark(file, (m) => warnings.push(m)),
        undefined,
        'absent: no mark',
      );
      assert.equal(warnings.length, 0);
      for (const text of [
        '{"database":"/x","epoch":"e"',
        '{"database":"/x","epoch":"e","seq":"7"}',
        'null',
      ]) {
        writeFileSync(file, text);
        assert.equal(
          readHistoryMark(file, (m) => warnings.push(m)),
          undefined,
        );
      }
      assert.equal(warnings.length, 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
