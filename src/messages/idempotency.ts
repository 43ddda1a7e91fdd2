/**
 * Idempotent sends: a sender's Idempotency-Key stores the first answer for its lifetime. A retry with the
 * same request gets that answer again without sending twice; the same key with another request is a
 * conflict. The key is stored in the send's own transaction, so an answer is stored if and only if the
 * send committed.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { AppError, Errors } from '../errors.ts';
import type { DB } from '../store/schema.ts';
import * as repo from './idempotency.repository.ts';

/** Stores `result` as the key's answer, inside the caller's transaction at time `t`. */
export type Remember<T> = (trx: Kysely<DB>, result: T, t: number) => Promise<void>;

export interface Idempotency {
  /**
   * Runs `send` once per (sender, key) within the key's lifetime and answers a retry from the store.
   * Without a key, `send` just runs (with no `remember`). Throws IDEMPOTENCY_KEY_REUSED when the key was
   * used for a different request.
   */
  once<T>(
    senderId: number,
    key: string | undefined,
    request: object,
    send: (remember: Remember<T> | undefined) => Promise<T>,
  ): Promise<T>;
  /** Housekeeping: forgets keys past their lifetime. */
  prune(): Promise<number>;
}

/** Stable JSON of a request's top-level fields, hashed, for comparing retries. */
export function requestHash(request: object): string {
  const canonical = JSON.stringify(request, Object.keys(request).sort());
  return createHash('sha256').update(canonical).digest('hex');
}

export function createIdempotency(deps: { db: Kysely<DB>; ttlSec: number; now: () => number }): Idempotency {
  const { db, now } = deps;
  const expiredBefore = (t: number) => t - deps.ttlSec * 1000;

  async function replay<T>(senderId: number, key: string, hash: string): Promise<T | undefined> {
    const prior = await repo.findIdempotency(db, senderId, key);
    if (!prior || Number(prior.created_at) < expiredBefore(now())) return undefined;
    if (prior.request_hash !== hash) throw new AppError(Errors.IDEMPOTENCY_KEY_REUSED);
    return JSON.parse(prior.response) as T;
  }

  return {
    async once<T>(
      senderId: number,
      key: string | undefined,
      request: object,
      send: (remember: Remember<T> | undefined) => Promise<T>,
    ): Promise<T> {
      if (key === undefined) return send(undefined);
      const hash = requestHash(request);
      const prior = await replay<T>(senderId, key, hash);
      if (prior !== undefined) return prior;
      const remember: Remember<T> = async (trx, result, t) => {
        // A use of this key older than the lifetime no longer counts, but may not be pruned yet.
        await repo.deleteIdempotencyBefore(trx, senderId, key, expiredBefore(t));
        await repo.insertIdempotency(trx, {
          sender_id: senderId,
          key,
          request_hash: hash,
          response: JSON.stringify(result),
          created_at: t,
        });
      };
      try {
        return await send(remember);
      } catch (e) {
        // A concurrent request with the same key committed first (the insert hit the primary key):
        // answer with its result. A refusal (AppError) is the answer itself.
        if (!(e instanceof AppError)) {
          const raced = await replay<T>(senderId, key, hash);
          if (raced !== undefined) return raced;
        }
        throw e;
      }
    },
    prune: () => repo.pruneIdempotency(db, expiredBefore(now())),
  };
}
