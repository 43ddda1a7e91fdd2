/**
 * The REST side of real-time delivery: one-time tickets for the WebSocket upgrade, who is online, and the
 * admin broadcast. The WebSocket route itself is realtime/upgrade.ts.
 */
import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../auth/auth.service.ts';
import { AppError, Errors } from '../../errors.ts';
import { BROADCAST_TYPES, INBOUND_LIMITS } from '../../protocol.ts';
import type { MessageService } from '../../messages/message.service.ts';
import type { Presence } from '../../realtime/presence.ts';
import { principalOf, type AuthHooks } from '../auth-hooks.ts';
import { bearer, envelopeSchema, errorSchema, ok } from '../envelope.ts';
import { sendQuota, type SendQuota } from '../send-quota.ts';

export interface RealtimeRouteDeps {
  auth: Pick<AuthService, 'issueTicket'>;
  messages: Pick<MessageService, 'broadcast'>;
  presence: Pick<Presence, 'onlineUserIds' | 'isOnline'>;
  hooks: AuthHooks;
  /** The per-sender limit of POST /ws/broadcast (SKYPUSH_SEND_RATE_LIMIT[_ADMIN]). */
  sendLimit: SendQuota;
}

export async function realtimeRoutes(
  app: FastifyInstance,
  { auth, messages, presence, hooks, sendLimit }: RealtimeRouteDeps,
): Promise<void> {
  const tags = ['websocket'];
  const quota = sendQuota(sendLimit);

  app.post(
    '/api/v1/ws/ticket',
    {
      onRequest: hooks.authenticate,
      schema: {
        tags,
        summary: 'A one-time ticket (30 s) for GET /api/v1/ws/messages?ticket=…, so no token goes in a URL',
        security: bearer,
        response: {
          200: envelopeSchema({
            type: 'object',
            properties: { ticket: { type: 'string' }, expiresIn: { type: 'integer' } },
          }),
        },
      },
    },
    async (request) => ok(await auth.issueTicket(principalOf(request))),
  );

  app.get(
    '/api/v1/ws/online/users',
    {
      onRequest: hooks.requireAdmin,
      schema: {
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
      },
    },
    async () => {
      const users = (await presence.onlineUserIds()).sort((a, b) => a - b);
      return ok({ onlineCount: users.length, users });
    },
  );

  app.get<{ Querystring: { userId?: string } }>(
    '/api/v1/ws/online/check',
    {
      onRequest: hooks.authenticate,
      schema: {
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
      },
    },
    async (request) => {
      const p = principalOf(request);
      const asked = request.query.userId === undefined ? p.userId : Number(request.query.userId);
      if (asked !== p.userId && p.role !== 'admin')
        throw new AppError(Errors.ADMIN_REQUIRED, 'only admins may check other users');
      return ok({ userID: asked, isOnline: await presence.isOnline(asked) });
    },
  );

  app.post<{ Body: { type?: string; data: Record<string, unknown> } }>(
    '/api/v1/ws/broadcast',
    {
      onRequest: hooks.requireAdmin,
      // A broadcast fans out like a send: the same per-sender quota, counted on its own.
      ...(quota && { config: { rateLimit: quota } }),
      schema: {
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
      },
    },
    async (request) => {
      const { type = 'SYSTEM_NOTIFY', data } = request.body;
      if (Buffer.byteLength(JSON.stringify(data)) > INBOUND_LIMITS.maxDataBytes) {
        throw new AppError(
          Errors.VALIDATION_FAILED,
          `data must be at most ${INBOUND_LIMITS.maxDataBytes} bytes of JSON`,
          { data: { field: '/data' } },
        );
      }
      await messages.broadcast(type, data);
      // The broadcast is committed; an unreachable presence store must not turn that into an error.
      const online = await presence.onlineUserIds().catch(() => undefined);
      return online === undefined
        ? ok({ recipients: null }, 'broadcast sent; online count unavailable')
        : ok({ recipients: online.length }, 'broadcast sent');
    },
  );
}
