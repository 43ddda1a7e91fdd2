/**
 * Checks every parsed JSON body once, before any route sees it: all text is well-formed Unicode, and
 * nesting is bounded. JSON allows `"\ud800"` (a lone surrogate); stored, it reads back differently
 * through REST (escaped) and through WebSocket (replaced), so it is refused like any invalid text. The
 * walk is iterative so a deep body cannot overflow the stack, and the depth bound keeps routes that
 * re-serialise free-form data (broadcast `data`) from overflowing it later.
 */
import { AppError, Errors } from '../errors.ts';

/** The deepest nesting a request body may have (the body itself is depth 0). */
export const MAX_BODY_DEPTH = 64;

interface Entry {
  value: unknown;
  depth: number;
  parent: Entry | undefined;
  key: string;
}

// Node 20 has String.prototype.isWellFormed; the ES2023 typings do not know it yet.
const isWellFormed = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

function pointer(e: Entry | undefined): string {
  const parts: string[] = [];
  for (let at = e; at?.parent; at = at.parent) parts.push(at.key.replace(/~/g, '~0').replace(/\//g, '~1'));
  return parts.length === 0 ? '/' : `/${parts.reverse().join('/')}`;
}

function refuse(at: Entry, what: string): AppError {
  // Keys are checked before their values are visited, so the pointer itself is always valid text.
  const field = pointer(at);
  return new AppError(Errors.VALIDATION_FAILED, `body${field === '/' ? '' : field} ${what}`, {
    data: { in: 'body', field },
  });
}

/** Throws 400 40001 naming the first string or key that is not valid Unicode, or nesting too deep. */
export function checkBodyText(body: unknown): void {
  const stack: Entry[] = [{ value: body, depth: 0, parent: undefined, key: '' }];
  for (let e = stack.pop(); e !== undefined; e = stack.pop()) {
    const v = e.value;
    if (typeof v === 'string') {
      if (!isWellFormed(v)) throw refuse(e, 'is not valid Unicode (lone surrogate)');
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (e.depth >= MAX_BODY_DEPTH) throw refuse(e, `nests deeper than ${MAX_BODY_DEPTH} levels`);
    const entries = Array.isArray(v) ? v.entries() : Object.entries(v as Record<string, unknown>);
    for (const [k, child] of entries) {
      const key = String(k);
      if (!isWellFormed(key)) throw refuse(e, 'has a key that is not valid Unicode (lone surrogate)');
      stack.push({ value: child, depth: e.depth + 1, parent: e, key });
    }
  }
}
