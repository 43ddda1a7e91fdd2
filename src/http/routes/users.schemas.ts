/** Request and response schemas of the user routes (users.routes.ts), also their OpenAPI text. */
import type { FastifySchema } from 'fastify';
import { bearer, envelopeSchema, errorSchema, idParam } from '../envelope.ts';

const tags = ['users'];

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

/** POST /api/v1/users */
export const createSchema: FastifySchema = {
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
};

/** POST /api/v1/users/bulk */
export const bulkSchema: FastifySchema = {
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
};

/** GET /api/v1/users */
export const listSchema: FastifySchema = {
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
};

/** GET /api/v1/users/:id */
export const getSchema: FastifySchema = {
  tags,
  summary: 'One user (admin)',
  security: bearer,
  params: idParam,
  response: { 200: envelopeSchema(userSchema) },
};

/** PATCH /api/v1/users/:id */
export const patchSchema: FastifySchema = {
  tags,
  summary: 'Disable/enable, change role, display name or password (admin); disabling closes their sockets',
  security: bearer,
  params: idParam,
  body: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: { disabled: { type: 'boolean' }, role, displayName, password },
  },
  response: { 200: envelopeSchema(userSchema) },
};
