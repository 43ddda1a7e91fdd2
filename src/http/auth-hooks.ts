/**
 * Request authentication: `authenticate` resolves the bearer token; `requireAdmin` adds the role check.
 * Routes run them as `onRequest` hooks, before the body is read and validated, so a caller without the
 * right credentials gets 401/403 whatever the body, and an anonymous body is never parsed.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthService, Principal } from '../auth/auth.service.ts';
import { AppError, Errors } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** Extracts the token from `Authorization: Bearer <jwt>`; undefined when absent. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

export function createAuthHooks(auth: AuthService) {
  async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const token = bearerToken(request.headers.authorization);
    if (!token) throw new AppError(Errors.UNAUTHENTICATED);
    request.principal = await auth.authenticate(token);
  }
  async function requireAdmin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    await authenticate(request, reply);
    if (request.principal?.role !== 'admin') throw new AppError(Errors.ADMIN_REQUIRED);
  }
  return { authenticate, requireAdmin };
}

export type AuthHooks = ReturnType<typeof createAuthHooks>;

/** The authenticated principal of a request that passed `authenticate`. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError(Errors.UNAUTHENTICATED);
  return request.principal;
}
