/**
 * Reading environment variables for config.ts: a Reader that converts and range-checks each value and
 * collects every problem (so start-up names them all at once), and the parsers for values with a
 * grammar of their own (database URL, trusted proxies, durations).
 */
import { isIP } from 'node:net';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export type Env = Record<string, string | undefined>;

const DURATION = /^(\d+)(ms|s|m|h|d)?$/;
const UNIT_SEC: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** Parses `90`, `90s`, `15m`, `1h`, `7d` into seconds (a bare number is seconds). */
export function parseDurationSec(raw: string): number | undefined {
  const m = DURATION.exec(raw.trim());
  if (!m) return undefined;
  return Number(m[1]) * (UNIT_SEC[m[2] ?? 's'] ?? 1);
}

export class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v;
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      this.problems.push(`${name}=${JSON.stringify(v)}: expected an integer from ${min} to ${max}`);
      return fallback;
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(v)) return true;
    if (/^(0|false|no|off)$/i.test(v)) return false;
    this.problems.push(`${name}=${JSON.stringify(v)}: expected true or false`);
    return fallback;
  }

  durationSec(name: string, fallbackSec: number, minSec: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallbackSec;
    const s = parseDurationSec(v);
    if (s === undefined || s < minSec) {
      this.problems.push(
        `${name}=${JSON.stringify(v)}: expected a duration like 3600, 15m, 1h or 7d (at least ${minSec}s)`,
      );
      return fallbackSec;
    }
    return s;
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      this.problems.push(`${name}=${JSON.stringify(v)}: expected one of ${allowed.join(', ')}`);
      return fallback;
    }
    return v as T;
  }
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Where the database is: the URL as given, its kind and, for SQLite, the file path. */
export interface DatabaseUrl {
  url: string;
  kind: 'sqlite' | 'postgres';
  sqlitePath?: string;
}

export function parseDatabaseUrl(r: Reader, name: string): DatabaseUrl {
  const url = r.string(name, 'sqlite:./data/skypush.db');
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path === '')
      r.problems.push(`${name}: sqlite URL needs a path, e.g. sqlite:./data/skypush.db or sqlite::memory:`);
    return { url, kind: 'sqlite', sqlitePath: path || './data/skypush.db' };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    try {
      new URL(url);
    } catch {
      r.problems.push(`${name}: not a valid postgres:// URL`);
    }
    return { url, kind: 'postgres' };
  }
  // Never echo the value: it may hold a password.
  r.problems.push(`${name}: expected sqlite:<path>, sqlite::memory: or postgres://…`);
  return { url: 'sqlite::memory:', kind: 'sqlite', sqlitePath: ':memory:' };
}

const PROXY_KEYWORDS = ['loopback', 'linklocal', 'uniquelocal'];

/** true/false, or the proxies to believe: addresses, CIDRs and proxy-addr's keywords, comma-separated. */
export function parseTrustProxy(r: Reader, name: string): boolean | string[] {
  const v = r.raw(name);
  if (v === undefined || !(/[.:,]/.test(v) || PROXY_KEYWORDS.includes(v.trim()))) return r.bool(name, false);
  const list = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const entry of list) {
    const [addr, bits, extra] = entry.split('/');
    const family = isIP(addr ?? '');
    const maxBits = family === 4 ? 32 : 128;
    const okBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= maxBits);
    if (!(PROXY_KEYWORDS.includes(entry) || (family !== 0 && okBits && extra === undefined)))
      r.problems.push(
        `${name}: ${JSON.stringify(entry)} is not an address, a CIDR (10.0.0.0/8) or one of ${PROXY_KEYWORDS.join(', ')}`,
      );
  }
  return list;
}

export function dirOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? (i === 0 ? '/' : '.') : path.slice(0, i);
}

/** Freezes a plain object and everything in it. */
export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
