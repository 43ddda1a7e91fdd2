/** POST /api/v1/auth/login, GET /api/v1/auth/me. */
import type { FastifyInstance } from 'fastify';
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

export interface AuthRouteDeps {
  auth: Pick<AuthService, 'login'>;
  hooks: Pick<AuthHooks, 'authenticate'>;
}

export async function authRoutes(app: FastifyInstance, { auth, hooks }: AuthRouteDeps): Promise<void> {
  app.post<{ Body: { username: string; password: string } }>(
    '/api/v1/auth/login',
    {
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
        },
      },
    },
    async (request) =>
      ok(await auth.login(request.body.username, request.body.password, request.ip), 'login successful'),
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
