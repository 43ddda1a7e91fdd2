/**
 * The rule for a message's `linkUrl`: an absolute `http://` or `https://` URL with a host, or a path on
 * the same site starting with a single `/`. Pages put the link in an `href`, so anything a browser could
 * read differently from us (another scheme, `//host`, a backslash, a control or space character, a
 * form the URL parser rewrites) is refused rather than cleaned up.
 */

/** Where a relative link is resolved for the round-trip check; never a real host. */
const BASE = 'https://base.invalid';

/**
 * Printable ASCII without the backslash (WHATWG parsers read `\` as `/` in http URLs) and without space:
 * this also refuses C0 and C1 controls, DEL, every Unicode space and any non-ASCII (send IRIs encoded).
 */
const ALLOWED_CHARS = /^[\x21-\x5b\x5d-\x7e]+$/;

/** Why `link` is not an acceptable linkUrl, or undefined when it is. */
export function linkUrlProblem(link: string): string | undefined {
  if (link === '') return 'must not be empty (leave it out or send null)';
  if (!ALLOWED_CHARS.test(link))
    return 'must be printable ASCII without spaces, control characters or backslashes';
  if (link.startsWith('/')) return relativeProblem(link);
  if (!/^https?:\/\//i.test(link)) return 'must start with http://, https:// or a single /';
  let url: URL;
  try {
    url = new URL(link);
  } catch {
    return 'is not a valid URL';
  }
  if (url.hostname === '') return 'must name a host';
  if (url.username !== '' || url.password !== '') return 'must not carry user information (user@host)';
  // The parser lower-cases scheme and host and adds the root path; anything else it rewrites (dot
  // segments, numeric hosts, default ports, escapes) means the browser would go somewhere else.
  const href = url.href.toLowerCase();
  const given = link.toLowerCase();
  if (href !== given && href !== `${given}/`) return 'must be written the way a browser reads it';
  return undefined;
}

function relativeProblem(link: string): string | undefined {
  if (link.startsWith('//')) return 'must not start with // (that names another host)';
  let url: URL;
  try {
    url = new URL(link, BASE);
  } catch {
    return 'is not a valid path';
  }
  if (url.origin !== BASE || `${url.pathname}${url.search}${url.hash}` !== link)
    return 'must be written the way a browser reads it';
  return undefined;
}

/** True when `link` is an acceptable linkUrl. */
export function isSafeLinkUrl(link: string): boolean {
  return linkUrlProblem(link) === undefined;
}
