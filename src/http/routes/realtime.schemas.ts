/** Request and response schemas of the REST routes of realtime.routes.ts, also their OpenAPI text. */
import type { FastifySchema } from 'fastify';
import { BROADCAST_TYPES } from '../../protocol.ts';
import { bearer, envelopeSchema, errorSchema } from '../envelope.ts';

const tags = ['websocket'];

/** POST /api/v1/ws/ticket */
export const ticketSchema: FastifySchema = {
  tags,
  summary: 'A one-time ticket (30 s) for GET /api/v1/ws/messages?ticket=…, so no token goes in a URL',
  security: bearer,
  response: {
    200: envelopeSchema({
      type: 'object',
      properties: { ticket: { type: 'string' }, expiresIn: { type: 'integer' } },
    }),
  },
};

/** GET /api/v1/ws/online/users */
export const onlineUsersSchema: FastifySchema = {
  tags,
  summary: 'Users with at least one open connection (admin)',
  security: bearer,
  response: {
    200: envelopeSchema({
      type: 'object',
      properties: {
        onlineCount: { type: 'integer' },
        users: { type: 'array', items: { type: 'integer' } },
      },
    }),
    403: errorSchema,
  },
};

/** GET /api/v1/ws/online/check */
export const onlineCheckSchema: FastifySchema = {
  tags,
  summary: 'Is the caller online (admins may ask about ?userId=)',
  security: bearer,
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { userId: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' } },
  },
  response: {
    200: envelopeSchema({
      type: 'object',
      properties: { userID: { type: 'integer' }, isOnline: { type: 'boolean' } },
    }),
  },
};

/** POST /api/v1/ws/broadcast */
export const broadcastSchema: FastifySchema = {
  tags,
  summary: 'Push a system notice to every user (admin); durable, replayed on resume',
  security: bearer,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['data'],
    properties: {
      type: { type: 'string', enum: [...BROADCAST_TYPES] },
      data: {
        type: 'object',
        properties: {
          title: { type: 'string', maxLength: 200 },
          content: { type: 'string' },
          level: { type: 'string', enum: ['info', 'warning', 'error', 'success'] },
        },
      },
    },
  },
  response: {
    200: envelopeSchema({ type: 'object', properties: { recipients: { type: ['integer', 'null'] } } }),
    403: errorSchema,
    429: errorSchema,
  },
};
