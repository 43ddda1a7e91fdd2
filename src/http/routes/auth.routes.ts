/** POST /api/v1/auth/login, GET /api/v1/auth/me. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, Errors } from '../../errors.ts';
import { bearer, envelopeSchema, errorSchema, ok } from '../envelope.ts';
import { principalOf } from '../auth-hooks.ts';
import type { AuthService } from '../../auth/auth.service.ts';
import type { AuthHooks } from '../auth-hooks.ts';

const userSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    username: { type: 'string' },
    role: { type: 'string' },
    displayName: { type: 'string' },
  },
} as const;

/**
 * Fires when the client hangs up before its answer is written, so a hash still waiting for its turn is
 * dropped. The response's 'close' is the one to watch: the request's own 'close' fires as soon as its
 * body has been read.
 */
function clientGone(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  const gone = () =>
    ac.abort(
      new AppError(Errors.BAD_REQUEST, 'client closed the connection before the password was checked'),
    );
  if (request.raw.socket.destroyed) gone();
  else reply.raw.once('close', () => reply.raw.writableFinished || gone());
  return ac.signal;
}

export interface AuthRouteDeps {
  auth: Pick<AuthService, 'login'>;
  hooks: Pick<AuthHooks, 'authenticate'>;
  /** SKYPUSH_LOGIN_RATE_LIMIT: login attempts per client address per minute. */
  loginRateLimit: number;
}

export async function authRoutes(
  app: FastifyInstance,
  { auth, hooks, loginRateLimit }: AuthRouteDeps,
): Promise<void> {
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
      schema: {
        tags: ['auth'],
        summary: 'Log in with username and password; returns a bearer token',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['username', 'password'],
          properties: {
            username: { type: 'string', minLength: 1, maxLength: 128 },
            password: { type: 'string', minLength: 1 },
          },
        },
        response: {
          200: envelopeSchema({
            type: 'object',
            properties: {
              accessToken: { type: 'string' },
              tokenType: { type: 'string' },
              expiresIn: { type: 'integer' },
              user: userSchema,
            },
          }),
          401: errorSchema,
          429: errorSchema,
          503: errorSchema,
        },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body;
      const signal = clientGone(request, reply);
      return ok(await auth.login(username, password, request.ip, { signal }), 'login successful');
    },
  );

  app.get(
    '/api/v1/auth/me',
    {
      onRequest: hooks.authenticate,
      schema: {
        tags: ['auth'],
        summary: 'The authenticated user',
        security: bearer,
        response: { 200: envelopeSchema(userSchema), 401: errorSchema },
      },
    },
    async (request) => {
      const p = principalOf(request);
      return ok({ id: p.userId, username: p.username, role: p.role, displayName: p.displayName });
    },
  );
}
