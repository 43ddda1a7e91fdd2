/**
 * The REST side of real-time delivery: one-time tickets for the WebSocket upgrade, who is online, and the
 * admin broadcast. The WebSocket route itself is realtime/upgrade.ts. Schemas: realtime.schemas.ts.
 */
import type { FastifyInstance } from 'fastify';
import type { AuthService } from '../../auth/auth.service.ts';
import { AppError, Errors } from '../../errors.ts';
import { INBOUND_LIMITS } from '../../protocol.ts';
import type { MessageService } from '../../messages/message.service.ts';
import type { Presence } from '../../realtime/presence.ts';
import { principalOf, type AuthHooks } from '../auth-hooks.ts';
import { ok } from '../envelope.ts';
import { sendQuota, type SendQuota } from '../send-quota.ts';
import { broadcastSchema, onlineCheckSchema, onlineUsersSchema, ticketSchema } from './realtime.schemas.ts';

export interface RealtimeRouteDeps {
  auth: Pick<AuthService, 'issueTicket'>;
  messages: Pick<MessageService, 'broadcast'>;
  presence: Pick<Presence, 'onlineUserIds' | 'isOnline'>;
  hooks: AuthHooks;
  /** The per-sender limit of POST /ws/broadcast (SKYPUSH_SEND_RATE_LIMIT[_ADMIN]). */
  sendLimit: SendQuota;
}

/** Registers the routes in the order the OpenAPI document lists them. */
export async function realtimeRoutes(app: FastifyInstance, deps: RealtimeRouteDeps): Promise<void> {
  ticketRoute(app, deps);
  onlineRoutes(app, deps);
  broadcastRoute(app, deps);
}

/** POST /api/v1/ws/ticket */
function ticketRoute(app: FastifyInstance, { auth, hooks }: RealtimeRouteDeps): void {
  app.post('/api/v1/ws/ticket', { onRequest: hooks.authenticate, schema: ticketSchema }, async (request) =>
    ok(await auth.issueTicket(principalOf(request))),
  );
}

/** Who is online: everyone (admin), or one user. */
function onlineRoutes(app: FastifyInstance, { presence, hooks }: RealtimeRouteDeps): void {
  app.get(
    '/api/v1/ws/online/users',
    { onRequest: hooks.requireAdmin, schema: onlineUsersSchema },
    async () => {
      const users = (await presence.onlineUserIds()).sort((a, b) => a - b);
      return ok({ onlineCount: users.length, users });
    },
  );

  app.get<{ Querystring: { userId?: string } }>(
    '/api/v1/ws/online/check',
    { onRequest: hooks.authenticate, schema: onlineCheckSchema },
    async (request) => {
      const p = principalOf(request);
      const asked = request.query.userId === undefined ? p.userId : Number(request.query.userId);
      if (asked !== p.userId && p.role !== 'admin')
        throw new AppError(Errors.ADMIN_REQUIRED, 'only admins may check other users');
      return ok({ userID: asked, isOnline: await presence.isOnline(asked) });
    },
  );
}

/** POST /api/v1/ws/broadcast */
function broadcastRoute(
  app: FastifyInstance,
  { messages, presence, hooks, sendLimit }: RealtimeRouteDeps,
): void {
  const quota = sendQuota(sendLimit);
  app.post<{ Body: { type?: string; data: Record<string, unknown> } }>(
    '/api/v1/ws/broadcast',
    {
      onRequest: hooks.requireAdmin,
      // A broadcast fans out like a send: the same per-sender quota, counted on its own.
      ...(quota && { config: { rateLimit: quota } }),
      schema: broadcastSchema,
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
