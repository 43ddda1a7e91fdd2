/**
 * Users: creation (one by one or mirrored in bulk from a host platform), changes, listing, and the
 * first-start admin. Owns its transactions; publishes `user-disabled` after commit so every node closes
 * that user's sockets.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Bus } from '../bus/bus.ts';
import { AppError, Errors } from '../errors.ts';
import { PASSWORD_MAX, PASSWORD_MIN, type PasswordHasher } from '../auth/password.ts';
import type { BulkUserInput, CreateUserInput, PatchUserInput, User } from '../api-types.ts';
import type { DB } from '../store/schema.ts';
import * as repo from './user.repository.ts';
import { UserRowCache } from './user-row-cache.ts';

export type { BulkUserInput, CreateUserInput, PatchUserInput, User } from '../api-types.ts';

export function toUser(row: repo.UserRow): User {
  return {
    id: Number(row.id),
    username: row.username,
    role: row.role,
    displayName: row.display_name,
    disabled: row.disabled === 1,
    hasPassword: row.password_hash !== null,
    createdAt: new Date(Number(row.created_at)).toISOString(),
  };
}

export function checkPasswordPolicy(password: string): void {
  if (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX)
    throw new AppError(Errors.PASSWORD_POLICY);
}

function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return (
    err?.code === '23505' ||
    err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    err?.code === 'SQLITE_CONSTRAINT_UNIQUE'
  );
}

export interface UserServiceDeps {
  db: Kysely<DB>;
  bus: Bus;
  hasher: PasswordHasher;
  nodeId: string;
  now?: () => number;
  /** Keep the rows of authenticated users in memory (only where this process alone changes users). */
  cacheRows?: boolean;
}

/** Users as the routes, authentication and the hub use them. */
export interface UserService {
  create(input: CreateUserInput): Promise<User>;
  get(id: number): Promise<User>;
  /** The row behind an authenticated request; undefined when missing. */
  findRow(id: number): Promise<repo.UserRow | undefined>;
  findRowByUsername(username: string): Promise<repo.UserRow | undefined>;
  /** Which of `ids` are disabled (hubs re-check their users after missing bus messages). */
  disabledAmong(ids: readonly number[]): Promise<number[]>;
  list(afterId: number, limit: number, q?: string): Promise<{ items: User[]; nextCursor: string | null }>;
  patch(id: number, input: PatchUserInput): Promise<User>;
  /** Mirrors up to 10,000 password-less users from a host platform in one transaction, idempotently. */
  bulkUpsert(users: readonly BulkUserInput[]): Promise<{ created: number; updated: number }>;
  /**
   * Creates the first admin when there are no users. Returns the generated password when none was
   * configured, so the caller can print it once.
   */
  ensureAdmin(
    username: string,
    password: string | undefined,
  ): Promise<{ created: boolean; generatedPassword?: string }>;
}

/** The deps with the defaults filled in, as the operations below take them. */
type Deps = Required<Omit<UserServiceDeps, 'cacheRows'>> & { cache: UserRowCache | undefined };

/** Runs a change to users, dropping their cached rows before it starts and after it ends. */
async function changing<T>(
  deps: Deps,
  ids: readonly number[] | undefined,
  change: () => Promise<T>,
): Promise<T> {
  deps.cache?.changed(ids);
  try {
    return await change();
  } finally {
    deps.cache?.changed(ids);
  }
}

async function create(deps: Deps, input: CreateUserInput): Promise<User> {
  if (input.password !== undefined) checkPasswordPolicy(input.password);
  // Hash before the transaction: it takes ~0.5 s and must not hold a database connection.
  const passwordHash = input.password === undefined ? null : await deps.hasher.hash(input.password);
  for (let attempt = 0; ; attempt++) {
    try {
      return await deps.db.transaction().execute(async (trx) => {
        if ((await repo.findUserByUsername(trx, input.username)) !== undefined)
          throw new AppError(Errors.USERNAME_TAKEN);
        if (input.id !== undefined && (await repo.findUserById(trx, input.id)) !== undefined) {
          throw new AppError(Errors.USER_ID_TAKEN);
        }
        const t = deps.now();
        const row: repo.UserRow = {
          id: input.id ?? (await repo.nextUserId(trx)),
          username: input.username,
          password_hash: passwordHash,
          role: input.role ?? 'user',
          display_name: input.displayName ?? input.username,
          disabled: 0,
          created_at: t,
          updated_at: t,
        };
        await repo.insertUser(trx, row);
        return toUser(row);
      });
    } catch (e) {
      // Two concurrent creations picked the same next id: retry; a real duplicate was caught above.
      if (isUniqueViolation(e) && input.id === undefined && attempt < 3) continue;
      if (isUniqueViolation(e)) throw new AppError(Errors.CONFLICT, 'user already exists');
      throw e;
    }
  }
}

async function get(deps: Deps, id: number): Promise<User> {
  const row = await repo.findUserById(deps.db, id);
  if (!row) throw new AppError(Errors.NOT_FOUND, 'user not found');
  return toUser(row);
}

async function list(
  deps: Deps,
  afterId: number,
  limit: number,
  q?: string,
): Promise<{ items: User[]; nextCursor: string | null }> {
  const rows = await repo.listUsers(deps.db, afterId, limit + 1, q);
  const page = rows.slice(0, limit).map(toUser);
  const last = page.at(-1);
  return { items: page, nextCursor: rows.length > limit && last ? String(last.id) : null };
}

async function patch(deps: Deps, id: number, input: PatchUserInput): Promise<User> {
  if (input.password !== undefined) checkPasswordPolicy(input.password);
  const passwordHash = input.password === undefined ? undefined : await deps.hasher.hash(input.password);
  const row = await changing(deps, [id], () =>
    deps.db.transaction().execute(async (trx) => {
      const before = await repo.findUserById(trx, id);
      if (!before) throw new AppError(Errors.NOT_FOUND, 'user not found');
      await repo.updateUser(trx, id, {
        ...(input.disabled !== undefined && { disabled: input.disabled ? 1 : 0 }),
        ...(input.role !== undefined && { role: input.role }),
        ...(input.displayName !== undefined && { display_name: input.displayName }),
        ...(passwordHash !== undefined && { password_hash: passwordHash }),
        updated_at: deps.now(),
      });
      return (await repo.findUserById(trx, id)) as repo.UserRow;
    }),
  );
  // After commit, and never the caller's failure: a hub that misses the message re-checks its users
  // when its bus reconnects (realtime/hub.ts).
  if (input.disabled === true)
    await deps.bus.publish({ type: 'user-disabled', origin: deps.nodeId, userId: id }).catch(() => {});
  return toUser(row);
}

/** Refuses a bulk request that names one id or one username twice. */
function checkBulkDistinct(ids: readonly number[], names: readonly string[]): void {
  if (new Set(ids).size !== ids.length) throw new AppError(Errors.VALIDATION_FAILED, 'duplicate id in users');
  if (new Set(names).size !== names.length)
    throw new AppError(Errors.VALIDATION_FAILED, 'duplicate username in users');
}

async function bulkUpsert(
  deps: Deps,
  users: readonly BulkUserInput[],
): Promise<{ created: number; updated: number }> {
  const ids = users.map((u) => u.id);
  const names = users.map((u) => u.username);
  checkBulkDistinct(ids, names);
  const disabledNow: number[] = [];
  const result = await changing(deps, ids, () =>
    deps.db.transaction().execute(async (trx) => {
      const existing = await repo.existingUserIds(trx, ids);
      const owners = await repo.usernameOwners(trx, names);
      const clashes = users
        .filter((u) => owners.has(u.username) && owners.get(u.username) !== u.id)
        .map((u) => u.username);
      if (clashes.length > 0) {
        throw new AppError(Errors.USERNAME_TAKEN, 'usernames belong to other user ids', {
          data: { usernames: clashes.slice(0, 100) },
        });
      }
      const t = deps.now();
      await repo.upsertUsers(
        trx,
        users.map((u) => ({
          id: u.id,
          username: u.username,
          password_hash: null,
          role: u.role ?? 'user',
          display_name: u.displayName ?? u.username,
          disabled: u.disabled ? 1 : 0,
          created_at: t,
          updated_at: t,
        })),
      );
      for (const u of users) if (u.disabled && existing.has(u.id)) disabledNow.push(u.id);
      return { created: users.length - existing.size, updated: existing.size };
    }),
  );
  for (const userId of disabledNow)
    await deps.bus.publish({ type: 'user-disabled', origin: deps.nodeId, userId }).catch(() => {});
  return result;
}

async function ensureAdmin(
  deps: Deps,
  username: string,
  password: string | undefined,
): Promise<{ created: boolean; generatedPassword?: string }> {
  if ((await repo.countUsers(deps.db)) > 0) return { created: false };
  const generated = password === undefined ? randomBytes(12).toString('base64url') : undefined;
  try {
    await create(deps, {
      username,
      password: password ?? generated,
      role: 'admin',
      displayName: 'Administrator',
    });
  } catch (e) {
    // Another node created it first.
    if (e instanceof AppError && (e.code === Errors.USERNAME_TAKEN.code || e.code === Errors.CONFLICT.code)) {
      return { created: false };
    }
    throw e;
  }
  return generated === undefined ? { created: true } : { created: true, generatedPassword: generated };
}

export function createUserService(opts: UserServiceDeps): UserService {
  const deps: Deps = {
    ...opts,
    now: opts.now ?? Date.now,
    cache: opts.cacheRows ? new UserRowCache() : undefined,
  };
  const { db, cache } = deps;
  const readRow = (id: number) => repo.findUserById(db, id);
  return {
    create: (input) => create(deps, input),
    get: (id) => get(deps, id),
    findRow: (id) => (cache ? cache.get(id, readRow) : readRow(id)),
    findRowByUsername: (username) => repo.findUserByUsername(db, username),
    disabledAmong: (ids) => repo.disabledUserIds(db, ids),
    list: (afterId, limit, q) => list(deps, afterId, limit, q),
    patch: (id, input) => patch(deps, id, input),
    bulkUpsert: (users) => bulkUpsert(deps, users),
    ensureAdmin: (username, password) => ensureAdmin(deps, username, password),
  };
}
