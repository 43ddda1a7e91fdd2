/**
 * The one rule for a message's link, checked again here before a page renders it (the server checks it
 * on send; a row written some other way, or by an older server, must not become a live link): an
 * absolute http(s) URL with a host, or a path on this site that starts with exactly one slash.
 * Refused: other schemes (javascript:, data:, …) in any case and with any leading whitespace,
 * backslashes (browsers read `/\host` as `//host`), a leading `//` (another host), and control
 * characters (browsers drop tabs and newlines, so `/\t/host` would become `//host`).
 */

/** Longer links are refused, as the API refuses them. */
export const LINK_MAX = 2048;

// C0 controls, DEL and C1 controls.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const ABSOLUTE = /^https?:\/\/[^/\\]/i;

/** `url` when it is safe to put in an href, else undefined. */
export function safeLink(url: unknown): string | undefined {
  if (typeof url !== 'string' || url.length === 0 || url.length > LINK_MAX) return undefined;
  if (CONTROL.test(url) || url.includes('\\')) return undefined;
  if (url.startsWith('/')) return url.startsWith('//') ? undefined : url;
  if (!ABSOLUTE.test(url)) return undefined;
  try {
    const u = new URL(url);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.host !== '' ? url : undefined;
  } catch {
    return undefined;
  }
}
