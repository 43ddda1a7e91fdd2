/**
 * Admin-only user management: create, list, get, change, and bulk mirroring from a host platform.
 * Schemas: users.schemas.ts.
 */
import type { FastifyInstance } from 'fastify';
import { AppError, Errors } from '../../errors.ts';
import type {
  BulkUserInput,
  CreateUserInput,
  PatchUserInput,
  UserService,
} from '../../users/user.service.ts';
import { ok } from '../envelope.ts';
import type { AuthHooks } from '../auth-hooks.ts';
import { bulkSchema, createSchema, getSchema, listSchema, patchSchema } from './users.schemas.ts';

export interface UserRouteDeps {
  users: Pick<UserService, 'create' | 'list' | 'get' | 'patch' | 'bulkUpsert'>;
  hooks: Pick<AuthHooks, 'requireAdmin'>;
}

/** Registers the routes in the order the OpenAPI document lists them. */
export async function userRoutes(app: FastifyInstance, deps: UserRouteDeps): Promise<void> {
  createRoutes(app, deps);
  readRoutes(app, deps);
  patchRoute(app, deps);
}

/** One user, or up to 10,000 mirrored from a host platform. */
function createRoutes(app: FastifyInstance, { users, hooks }: UserRouteDeps): void {
  app.post<{ Body: CreateUserInput }>(
    '/api/v1/users',
    { onRequest: hooks.requireAdmin, schema: createSchema },
    async (request, reply) => reply.code(201).send(ok(await users.create(request.body), 'user created')),
  );

  app.post<{ Body: { users: BulkUserInput[] } }>(
    '/api/v1/users/bulk',
    {
      onRequest: hooks.requireAdmin,
      // 10,000 users at up to ~1 KB each: larger than the default limit, still bounded.
      bodyLimit: 16 * 1_048_576,
      schema: bulkSchema,
    },
    async (request) => ok(await users.bulkUpsert(request.body.users), 'users upserted'),
  );
}

/** The paged list and one user by id. */
function readRoutes(app: FastifyInstance, { users, hooks }: UserRouteDeps): void {
  app.get<{ Querystring: { cursor?: string; limit?: string; q?: string } }>(
    '/api/v1/users',
    { onRequest: hooks.requireAdmin, schema: listSchema },
    async (request) => {
      const limit = Math.min(Math.max(Number(request.query.limit ?? 50), 1), 500);
      return ok(await users.list(Number(request.query.cursor ?? 0), limit, request.query.q));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/users/:id',
    { onRequest: hooks.requireAdmin, schema: getSchema },
    async (request) => ok(await users.get(Number(request.params.id))),
  );
}

/** PATCH /api/v1/users/:id: an admin may change anyone but cannot lock themselves out. */
function patchRoute(app: FastifyInstance, { users, hooks }: UserRouteDeps): void {
  app.patch<{ Params: { id: string }; Body: PatchUserInput }>(
    '/api/v1/users/:id',
    { onRequest: hooks.requireAdmin, schema: patchSchema },
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
