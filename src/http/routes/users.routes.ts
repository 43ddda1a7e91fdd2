/** Admin-only user management: create, list, get, change, and bulk mirroring from a host platform. */
import type { FastifyInstance } from 'fastify';
import { AppError, Errors } from '../../errors.ts';
import type {
  BulkUserInput,
  CreateUserInput,
  PatchUserInput,
  UserService,
} from '../../users/user.service.ts';
import { bearer, envelopeSchema, errorSchema, idParam, ok } from '../envelope.ts';
import type { AuthHooks } from '../auth-hooks.ts';

const username = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.@-]+$' } as const;
const role = { type: 'string', enum: ['admin', 'user'] } as const;
const displayName = { type: 'string', minLength: 1, maxLength: 128 } as const;
const userId = { type: 'integer', minimum: 1, maximum: 999_999_999_999_999 } as const;
// Length is checked in the service (8..1024) so the error names the policy; cap here before hashing.
const password = { type: 'string', maxLength: 4096 } as const;

const userSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    username: { type: 'string' },
    role: { type: 'string' },
    displayName: { type: 'string' },
    disabled: { type: 'boolean' },
    hasPassword: { type: 'boolean' },
    createdAt: { type: 'string' },
  },
} as const;

export interface UserRouteDeps {
  users: Pick<UserService, 'create' | 'list' | 'get' | 'patch' | 'bulkUpsert'>;
  hooks: Pick<AuthHooks, 'requireAdmin'>;
}

export async function userRoutes(app: FastifyInstance, { users, hooks }: UserRouteDeps): Promise<void> {
  const common = { onRequest: hooks.requireAdmin };
  const tags = ['users'];

  app.post<{ Body: CreateUserInput }>(
    '/api/v1/users',
    {
      ...common,
      schema: {
        tags,
        summary: 'Create a user (admin). Without a password the user can only use host-minted tokens.',
        security: bearer,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['username'],
          properties: { id: userId, username, password, role, displayName },
        },
        response: { 201: envelopeSchema(userSchema), 400: errorSchema, 403: errorSchema, 409: errorSchema },
      },
    },
    async (request, reply) => reply.code(201).send(ok(await users.create(request.body), 'user created')),
  );

  app.post<{ Body: { users: BulkUserInput[] } }>(
    '/api/v1/users/bulk',
    {
      ...common,
      // 10,000 users at up to ~1 KB each: larger than the default limit, still bounded.
      bodyLimit: 16 * 1_048_576,
      schema: {
        tags,
        summary: 'Upsert up to 10,000 password-less users by id in one transaction (admin)',
        security: bearer,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['users'],
          properties: {
            users: {
              type: 'array',
              minItems: 1,
              maxItems: 10_000,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['id', 'username'],
                properties: { id: userId, username, displayName, role, disabled: { type: 'boolean' } },
              },
            },
          },
        },
      },
    },
    async (request) => ok(await users.bulkUpsert(request.body.users), 'users upserted'),
  );

  app.get<{ Querystring: { cursor?: string; limit?: string; q?: string } }>(
    '/api/v1/users',
    {
      ...common,
      schema: {
        tags,
        summary: 'List users by id, paged; q= finds them by username, display name or id (admin)',
        security: bearer,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            cursor: { type: 'string', pattern: '^[0-9]{1,15}$' },
            limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
            q: { type: 'string', minLength: 1, maxLength: 100 },
          },
        },
      },
    },
    async (request) => {
      const limit = Math.min(Math.max(Number(request.query.limit ?? 50), 1), 500);
      return ok(await users.list(Number(request.query.cursor ?? 0), limit, request.query.q));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/users/:id',
    {
      ...common,
      schema: {
        tags,
        summary: 'One user (admin)',
        security: bearer,
        params: idParam,
        response: { 200: envelopeSchema(userSchema) },
      },
    },
    async (request) => ok(await users.get(Number(request.params.id))),
  );

  app.patch<{ Params: { id: string }; Body: PatchUserInput }>(
    '/api/v1/users/:id',
    {
      ...common,
      schema: {
        tags,
        summary:
          'Disable/enable, change role, display name or password (admin); disabling closes their sockets',
        security: bearer,
        params: idParam,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { disabled: { type: 'boolean' }, role, displayName, password },
        },
        response: { 200: envelopeSchema(userSchema) },
      },
    },
    async (request) => {
      const id = Number(request.params.id);
      const self = request.principal?.userId === id;
      if (self && (request.body.disabled === true || request.body.role === 'user')) {
        throw new AppError(Errors.CONFLICT, 'an admin cannot disable or demote themselves');
      }
      return ok(await users.patch(id, request.body), 'user updated');
    },
  );
}
