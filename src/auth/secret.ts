/**
 * The JWT signing secret: SKYPUSH_JWT_SECRET, or (embedded mode) one generated once and kept in the data
 * folder as `jwt-secret`. A kept secret is held to the same rule as the variable: at least 32 bytes.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type Config } from '../config.ts';
import { ensurePrivateDir, PRIVATE_FILE_MODE } from '../store/private-files.ts';

/** The shortest secret accepted, from the variable or the file (HS256 wants at least 256 bits). */
export const JWT_SECRET_MIN_BYTES = 32;

/** Returns the secret to sign with; throws ConfigError (naming the file, never the secret) if it is too short. */
export function resolveJwtSecret(config: Config): string {
  if (config.auth.jwtSecret !== undefined) return config.auth.jwtSecret;
  if (config.database.sqlitePath === ':memory:') return randomBytes(32).toString('base64url');
  const file = join(config.dataDir, 'jwt-secret');
  if (existsSync(file)) {
    const secret = readFileSync(file, 'utf8').trim();
    const bytes = Buffer.byteLength(secret);
    if (bytes < JWT_SECRET_MIN_BYTES)
      throw new ConfigError([
        `${file}: the JWT secret kept there must be at least ${JWT_SECRET_MIN_BYTES} bytes long (it has ${bytes}); ` +
          'delete the file to generate a new one (signs every user out) or set SKYPUSH_JWT_SECRET',
      ]);
    return secret;
  }
  ensurePrivateDir(config.dataDir);
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
  chmodSync(file, PRIVATE_FILE_MODE);
  return secret;
}
