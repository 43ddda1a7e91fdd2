/** POST /api/v1/auth/login, GET /api/v1/auth/me. Schemas: auth.schemas.ts. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { clientGone } from '../client-gone.ts';
import { ok } from '../envelope.ts';
import { principalOf } from '../auth-hooks.ts';
import type { AuthService } from '../../auth/auth.service.ts';
import type { AuthHooks } from '../auth-hooks.ts';
import { loginSchema, meSchema } from './auth.schemas.ts';

export interface AuthRouteDeps {
  auth: Pick<AuthService, 'login'>;
  hooks: Pick<AuthHooks, 'authenticate'>;
  /** SKYPUSH_LOGIN_RATE_LIMIT: login attempts per client address per minute. */
  loginRateLimit: number;
}

/** Registers the routes in the order the OpenAPI document lists them. */
export async function authRoutes(app: FastifyInstance, deps: AuthRouteDeps): Promise<void> {
  loginRoute(app, deps);
  meRoute(app, deps);
}

/** POST /api/v1/auth/login */
function loginRoute(app: FastifyInstance, { auth, loginRateLimit }: AuthRouteDeps): void {
  app.post<{ Body: { username: string; password: string } }>(
    '/api/v1/auth/login',
    {
      // Per client address, before the body is even parsed: request.ip honours X-Forwarded-For only
      // from SKYPUSH_TRUST_PROXY's proxies, so a forged header does not make a new source.
      config: {
        rateLimit: {
          max: loginRateLimit,
          timeWindow: 60_000,
          keyGenerator: (request: FastifyRequest) => `login:${request.ip}`,
        },
      },
      schema: loginSchema,
    },
    async (request, reply) => {
      const { username, password } = request.body;
      const signal = clientGone(request, reply, 'the password was checked');
      return ok(await auth.login(username, password, request.ip, { signal }), 'login successful');
    },
  );
}

/** GET /api/v1/auth/me */
function meRoute(app: FastifyInstance, { hooks }: AuthRouteDeps): void {
  app.get('/api/v1/auth/me', { onRequest: hooks.authenticate, schema: meSchema }, async (request) => {
    const p = principalOf(request);
    return ok({ id: p.userId, username: p.username, role: p.role, displayName: p.displayName });
  });
}
