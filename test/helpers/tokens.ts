/** Host-minted tokens, as a platform holding the shared secret would make them. */
import { SignJWT } from 'jose';
import { JWT_SECRET } from './app.ts';

export async function mint(
  userId: number,
  role: 'admin' | 'user' = 'user',
  expiresIn: string | number = '1h',
): Promise<string> {
  return new SignJWT({ role })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(String(userId))
    .setExpirationTime(expiresIn)
    .sign(new TextEncoder().encode(JWT_SECRET));
}
