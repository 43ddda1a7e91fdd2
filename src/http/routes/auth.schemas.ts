/** Request and response schemas of the auth routes (auth.routes.ts), also their OpenAPI text. */
import type { FastifySchema } from 'fastify';
import { bearer, envelopeSchema, errorSchema } from '../envelope.ts';

const userSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    username: { type: 'string' },
    role: { type: 'string' },
    displayName: { type: 'string' },
  },
} as const;

/** POST /api/v1/auth/login */
export const loginSchema: FastifySchema = {
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
};

/** GET /api/v1/auth/me */
export const meSchema: FastifySchema = {
  tags: ['auth'],
  summary: 'The authenticated user',
  security: bearer,
  response: { 200: envelopeSchema(userSchema), 401: errorSchema },
};
