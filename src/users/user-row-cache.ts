/**
 * The user rows behind authenticated requests and connections, kept in memory where this process is the
 * only one that changes users (SQLite: docs/decisions/0017-group-commit.md, "the user row"). Every
 * request and every connection reads its user's row (enabled? role?); a cached row saves that read.
 *
 * Exact, not a time-to-live: every change the user service makes drops the rows it touches, before its
 * transaction starts and again after it commits, and a read that was under way across a change is not
 * kept (the generation moved). A missing user is never kept, so a user added by `skypush user add` from
 * another process is found at once. At most USER_ROWS rows, the oldest dropped first.
 */
import type { UserRow } from './user.repository.ts';

/** Rows kept at most (a few hundred bytes each). */
export const USER_ROWS = 10_000;

export class UserRowCache {
  private readonly rows = new Map<number, UserRow>();
  private generation = 0;

  constructor(private readonly max = USER_ROWS) {}

  /** The row for `id`, from memory or from `read` (kept only if no change began meanwhile). */
  async get(id: number, read: (id: number) => Promise<UserRow | undefined>): Promise<UserRow | undefined> {
    const hit = this.rows.get(id);
    if (hit !== undefined) return hit;
    const generation = this.generation;
    const row = await read(id);
    if (row !== undefined && generation === this.generation) {
      this.rows.set(id, row);
      for (const old of this.rows.keys()) {
        if (this.rows.size <= this.max) break;
        this.rows.delete(old);
      }
    }
    return row;
  }

  /** A change to `ids` (all users when undefined) begins or has committed. */
  changed(ids?: readonly number[]): void {
    this.generation++;
    if (ids === undefined) this.rows.clear();
    else for (const id of ids) this.rows.delete(id);
  }

  get size(): number {
    return this.rows.size;
  }
}
