/** Request and response schemas of the message routes (messages.routes.ts), also their OpenAPI text. */
import type { FastifySchema } from 'fastify';
import { bearer, envelopeSchema, errorSchema, idParam } from '../envelope.ts';

const tags = ['messages'];

const itemSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    messageId: { type: 'integer' },
    title: { type: 'string' },
    content: { type: 'string' },
    messageType: { type: 'string' },
    priority: { type: 'integer' },
    senderId: { type: 'integer' },
    senderName: { type: 'string' },
    linkUrl: { type: ['string', 'null'] },
    targetType: { type: 'string' },
    createTime: { type: 'string' },
    expiresAt: { type: ['string', 'null'] },
    isRead: { type: 'boolean' },
    readAt: { type: ['string', 'null'] },
  },
} as const;

const sendHeaders = {
  type: 'object',
  properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 128 } },
};

const sendResponse = {
  200: envelopeSchema({
    type: 'object',
    properties: {
      messageId: { type: 'integer' },
      targetType: { type: 'string' },
      recipients: { type: 'integer' },
    },
  }),
  400: errorSchema,
  403: errorSchema,
  413: errorSchema,
  429: errorSchema,
  503: errorSchema,
};

/** POST /api/v1/messages/send; the content cap is SKYPUSH_MAX_MESSAGE_BYTES, so this one is built. */
export function sendSchema(maxMessageBytes: number): FastifySchema {
  return {
    tags,
    summary: 'Send a message to listed users, or to everyone (admin only)',
    description:
      'An Idempotency-Key header makes retries safe: the same key from the same sender within 24 h returns the first result.',
    security: bearer,
    headers: sendHeaders,
    body: {
      type: 'object',
      additionalProperties: false,
      required: ['title', 'content', 'targetType'],
      properties: {
        // maxLength counts UTF-16 units, never more than UTF-8 bytes: a cheap first cut; the byte
        // caps are checked by the service (messages/send-limits.ts).
        title: {
          type: 'string',
          minLength: 1,
          maxLength: 1024,
          description: 'at most 1,024 bytes of UTF-8',
        },
        content: {
          type: 'string',
          maxLength: maxMessageBytes,
          description: 'at most SKYPUSH_MAX_MESSAGE_BYTES bytes of UTF-8 with the other fields',
        },
        messageType: { type: 'string', minLength: 1, maxLength: 50, pattern: '^[A-Za-z0-9_.-]+$' },
        priority: { type: 'integer', minimum: 0, maximum: 9 },
        linkUrl: {
          type: ['string', 'null'],
          maxLength: 2048,
          description:
            'an http(s) URL with a host, or a path starting with a single / (messages/link-url.ts)',
        },
        targetType: { type: 'string', enum: ['user', 'all'] },
        targetIds: {
          type: 'array',
          maxItems: 100_000,
          items: { type: 'integer', minimum: 1, maximum: 999_999_999_999_999 },
        },
        expiresAt: { type: ['string', 'null'], format: 'date-time' },
      },
    },
    response: sendResponse,
  };
}

/** GET /api/v1/messages */
export const listSchema: FastifySchema = {
  tags,
  summary: "The caller's inbox, newest first, cursor-paged",
  security: bearer,
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      cursor: { type: 'string', maxLength: 64 },
      limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
      status: { type: 'string', enum: ['unread', 'read', 'all'] },
      messageType: { type: 'string', maxLength: 50 },
    },
  },
  response: {
    200: envelopeSchema({
      type: 'object',
      properties: {
        items: { type: 'array', items: itemSchema },
        nextCursor: { type: ['string', 'null'] },
      },
    }),
  },
};

/** GET /api/v1/messages/unread-count */
export const unreadCountSchema: FastifySchema = {
  tags,
  summary: "The caller's unread count",
  security: bearer,
  response: { 200: envelopeSchema({ type: 'object', properties: { count: { type: 'integer' } } }) },
};

/** PUT /api/v1/messages/read-all */
export const readAllSchema: FastifySchema = {
  tags,
  summary: "Mark every message in the caller's inbox read",
  security: bearer,
};

/** GET /api/v1/messages/:id */
export const getSchema: FastifySchema = {
  tags,
  summary: 'One message of the caller',
  security: bearer,
  params: idParam,
  response: { 200: envelopeSchema(itemSchema), 404: errorSchema },
};

/** PUT /api/v1/messages/:id/read */
export const markReadSchema: FastifySchema = {
  tags,
  summary: 'Mark one message read',
  security: bearer,
  params: idParam,
  response: { 404: errorSchema },
};

/** DELETE /api/v1/messages/:id */
export const deleteSchema: FastifySchema = {
  tags,
  summary: "Delete a message from the caller's inbox (per user)",
  security: bearer,
  params: idParam,
  response: { 404: errorSchema },
};
