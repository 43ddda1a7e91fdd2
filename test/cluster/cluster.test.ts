/**
 * The cluster suite (cluster-suite.ts) on PostgreSQL + Redis: the machine's Redis, under a key prefix
 * of this run's own. Killing the Redis wake-up connections is tested with a private Redis, in
 * failures.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { REDIS_URL } from '../helpers/app.ts';
import { clusterSuite } from './cluster-suite.ts';

clusterSuite({
  name: 'PostgreSQL + Redis',
  env: () => ({
    SKYPUSH_REDIS_URL: REDIS_URL,
    SKYPUSH_REDIS_PREFIX: `skypush-test-${randomBytes(4).toString('hex')}:`,
  }),
  async lockRecords(env) {
    const redis = new Redis(REDIS_URL);
    try {
      const names = await redis.keys(`${env['SKYPUSH_REDIS_PREFIX']}login:*`);
      const lock = names.find((k) => k.endsWith(':lock'));
      return { names, lockMs: lock === undefined ? 0 : await redis.pttl(lock) };
    } finally {
      redis.disconnect();
    }
  },
});
