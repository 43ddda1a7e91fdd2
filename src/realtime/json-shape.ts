/**
 * A single linear pass over a client frame's raw JSON bytes, before it is parsed: how deep it nests
 * and how many bytes the top-level "data" value takes as sent. Parsing (and anything later that
 * recurses, such as JSON.stringify) only ever sees text that passed these bounds, so a 10 KB frame of
 * 5,000 nested arrays costs one scan, not a stack overflow.
 *
 * Bytes, not characters: every structural JSON character is ASCII, and no byte of a multi-byte UTF-8
 * sequence is below 0x80, so scanning the UTF-8 bytes finds the same structure and measures in bytes.
 * Malformed text is never an error here: the scan stops early or reports what it saw, and JSON.parse
 * refuses it afterwards.
 */

export interface JsonShape {
  /** The deepest nesting of objects and arrays seen (the envelope object is level 1). */
  depth: number;
  /** Bytes of the largest top-level "data" value, from its first to its last byte; 0 when absent. */
  dataBytes: number;
  /** The scan stopped at `maxDepth + 1`: `dataBytes` is then meaningless. */
  tooDeep: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const DATA_KEY = Buffer.from('"data"');

const isSpace = (b: number) => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;

/** The key string `raw[start..end]` (quotes included) names "data", escapes such as \u0064 included. */
function namesData(raw: Uint8Array, start: number, end: number): boolean {
  const len = end - start + 1;
  if (len === DATA_KEY.length) return Buffer.compare(raw.subarray(start, end + 1), DATA_KEY) === 0;
  // Only an escaped spelling can be longer ("\u0064ata" is 11 bytes); no spelling of it exceeds 6 × 4 + 2.
  if (len > 26 || raw.indexOf(BACKSLASH, start) > end || raw.indexOf(BACKSLASH, start) < 0) return false;
  try {
    return JSON.parse(Buffer.from(raw.subarray(start, end + 1)).toString('utf8')) === 'data';
  } catch {
    return false;
  }
}

/**
 * Scans `raw` once; stops as soon as the nesting passes `maxDepth`. Never throws. One loop over the
 * bytes as a small state machine: split into functions it would pay a call per byte on the inbound path.
 */
export function scanJson(raw: Uint8Array, maxDepth: number): JsonShape {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  let escaped = false;
  // Members of a top-level object only (depth 1): where the current key and value are.
  let topObject = false;
  let expectKey = false;
  let keyStart = -1;
  let inData = false;
  let valueStart = -1;
  let valueEnd = -1;
  let dataBytes = 0;
  const endValue = () => {
    if (inData && valueStart >= 0) dataBytes = Math.max(dataBytes, valueEnd - valueStart + 1);
    inData = false;
    valueStart = -1;
  };
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i] as number;
    if (inString) {
      if (escaped) escaped = false;
      else if (b === BACKSLASH) escaped = true;
      else if (b === QUOTE) {
        inString = false;
        if (depth === 1 && keyStart >= 0) {
          inData = namesData(raw, keyStart, i);
          keyStart = -1;
          continue;
        }
      }
      valueEnd = i;
      continue;
    }
    if (isSpace(b)) continue;
    if (b === QUOTE) {
      inString = true;
      if (depth === 1 && expectKey) {
        keyStart = i;
        expectKey = false;
        continue;
      }
    } else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > deepest && (deepest = depth) > maxDepth) return { depth, dataBytes: 0, tooDeep: true };
      if (depth === 1) {
        topObject = expectKey = b === OPEN_OBJECT;
        continue;
      }
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
      if (depth === 1) {
        endValue();
        depth = 0;
        continue;
      }
      if (depth > 0) depth--;
    } else if (depth === 1 && b === COLON) {
      valueStart = -1;
      continue;
    } else if (depth === 1 && b === COMMA) {
      endValue();
      expectKey = topObject;
      continue;
    }
    if (depth >= 1 && valueStart < 0 && !expectKey) valueStart = i;
    valueEnd = i;
  }
  return { depth: deepest, dataBytes, tooDeep: false };
}
