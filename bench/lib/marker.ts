/**
 * Markers let a client recognise a benchmark message without parsing JSON: the message content carries
 * `~bm<kind><id>:<sentUs>~`, where sentUs is the *scheduled* send time on the shared monotonic clock
 * (so latency includes any queueing before the request left: no coordinated omission). The client finds
 * the marker with Buffer#indexOf and reads the digits byte by byte.
 */
import { randomBytes } from 'node:crypto';

export type MarkerKind = 'b' | 's' | 'u' | 'r';
export const MARKER_KINDS: readonly MarkerKind[] = ['b', 's', 'u', 'r'];

const PREFIX = Buffer.from('~bm');
const TILDE = 0x7e;
const COLON = 0x3a;

/**
 * What pads a marker to the content length: 'x' repeated, or 'random' base64url characters — content
 * that does not compress, so PostgreSQL's TOAST compression cannot hide what a row really costs (and no
 * JSON escaping, no '~').
 */
export type Filler = 'x' | 'random';

/** Message content: the marker padded with filler to `length` characters (the frame is ~length + 110 B). */
export function markerContent(
  kind: MarkerKind,
  id: number,
  sentUs: number,
  length: number,
  filler: Filler = 'x',
): string {
  const m = `~bm${kind}${id}:${Math.round(sentUs)}~`;
  if (m.length >= length) return m;
  const pad = length - m.length;
  return (
    m +
    (filler === 'x'
      ? 'x'.repeat(pad)
      : randomBytes(Math.ceil((pad * 3) / 4) + 3)
          .toString('base64url')
          .slice(0, pad))
  );
}

export interface FoundMarker {
  kind: number; // char code of the kind
  id: number;
  sentUs: number;
  /** Index to continue searching from. */
  next: number;
}

/** Finds the next marker at or after `from`; undefined when there is none. Reuses `out`. */
export function findMarker(buf: Buffer, from: number, out: FoundMarker): FoundMarker | undefined {
  const at = buf.indexOf(PREFIX, from);
  if (at < 0) return undefined;
  let i = at + 3;
  out.kind = buf[i++] ?? 0;
  let id = 0;
  for (let c = buf[i]; c !== undefined && c !== COLON; c = buf[++i]) id = id * 10 + (c - 48);
  let sent = 0;
  for (let c = buf[++i]; c !== undefined && c !== TILDE; c = buf[++i]) sent = sent * 10 + (c - 48);
  out.id = id;
  out.sentUs = sent;
  out.next = i + 1;
  return out;
}
