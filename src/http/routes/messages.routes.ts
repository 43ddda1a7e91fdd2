/** The caller's inbox and sending: the seed's message API. */
import type { FastifyInstance } from 'fastify';
import type { SendInput } from '../../messages/message.service.ts';
import { principalOf } from '../auth-hooks.ts';
import { bearer, envelopeSchema, errorSchema, idParam, ok } from '../envelope.ts';
import { sendQuota } from '../send-quota.ts';
import type { RouteDeps } from '../server.ts';

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

export async function messageRoutes(
  app: FastifyInstance,
  { messages, hooks, metrics, config }: RouteDeps,
): Promise<void> {
  const tags = ['messages'];
  const common = { onRequest: hooks.authenticate };
  const { maxMessageBytes, sendRateLimit, sendRateLimitAdmin } = config.messages;
  const quota = sendQuota({ perMinute: sendRateLimit, adminPerMinute: sendRateLimitAdmin });

  app.post<{ Body: SendInput; Headers: { 'idempotency-key'?: string } }>(
    '/api/v1/messages/send',
    {
      ...common,
      ...(quota && { config: { rateLimit: quota } }),
      schema: {
        tags,
        summary: 'Send a message to listed users, or to everyone (admin only)',
        description:
          'An Idempotency-Key header makes retries safe: the same key from the same sender within 24 h returns the first result.',
        security: bearer,
        headers: {
          type: 'object',
          properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 128 } },
        },
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
        response: {
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
        },
      },
    },
    async (request) => {
      const result = await messages.send(
        principalOf(request),
        request.body,
        request.headers['idempotency-key'],
      );
      metrics.messagesSent.inc({ target_type: result.targetType });
      return ok(result, 'message sent');
    },
  );

  app.get<{
    Querystring: {
      cursor?: string;
      limit?: string;
      status?: 'unread' | 'read' | 'all';
      messageType?: string;
    };
  }>(
    '/api/v1/messages',
    {
      ...common,
      schema: {
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
      },
    },
    async (request) => {
      const q = request.query;
      return ok(
        await messages.list(principalOf(request).userId, {
          ...(q.cursor !== undefined && { cursor: q.cursor }),
          ...(q.limit !== undefined && { limit: Number(q.limit) }),
          ...(q.status !== undefined && { status: q.status }),
          ...(q.messageType !== undefined && { messageType: q.messageType }),
        }),
      );
    },
  );

  app.get(
    '/api/v1/messages/unread-count',
    {
      ...common,
      schema: {
        tags,
        summary: "The caller's unread count",
        security: bearer,
        response: { 200: envelopeSchema({ type: 'object', properties: { count: { type: 'integer' } } }) },
      },
    },
    async (request) => ok({ count: await messages.unreadCount(principalOf(request).userId) }),
  );

  app.put(
    '/api/v1/messages/read-all',
    {
      ...common,
      schema: { tags, summary: "Mark every message in the caller's inbox read", security: bearer },
    },
    async (request) => {
      const r = await messages.markAllRead(principalOf(request).userId);
      return ok({ count: r.count }, 'all messages marked read');
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/messages/:id',
    {
      ...common,
      schema: {
        tags,
        summary: 'One message of the caller',
        security: bearer,
        params: idParam,
        response: { 200: envelopeSchema(itemSchema), 404: errorSchema },
      },
    },
    async (request) => ok(await messages.get(principalOf(request).userId, Number(request.params.id))),
  );

  app.put<{ Params: { id: string } }>(
    '/api/v1/messages/:id/read',
    {
      ...common,
      schema: {
        tags,
        summary: 'Mark one message read',
        security: bearer,
        params: idParam,
        response: { 404: errorSchema },
      },
    },
    async (request) =>
      ok(
        await messages.markRead(principalOf(request).userId, Number(request.params.id)),
        'message marked read',
      ),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/messages/:id',
    {
      ...common,
      schema: {
        tags,
        summary: "Delete a message from the caller's inbox (per user)",
        security: bearer,
        params: idParam,
        response: { 404: errorSchema },
      },
    },
    async (request) =>
      ok(await messages.remove(principalOf(request).userId, Number(request.params.id)), 'message deleted'),
  );
}
