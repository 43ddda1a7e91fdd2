/** The caller's inbox and sending: the seed's message API. Schemas: messages.schemas.ts. */
import type { FastifyInstance } from 'fastify';
import type { MessageService, SendInput } from '../../messages/message.service.ts';
import type { Metrics } from '../../metrics.ts';
import { principalOf, type AuthHooks } from '../auth-hooks.ts';
import { clientGone } from '../client-gone.ts';
import { ok } from '../envelope.ts';
import { sendQuota, type SendQuota } from '../send-quota.ts';
import {
  deleteSchema,
  getSchema,
  listSchema,
  markReadSchema,
  readAllSchema,
  sendSchema,
  unreadCountSchema,
} from './messages.schemas.ts';

export interface MessageRouteDeps {
  messages: Pick<
    MessageService,
    'send' | 'list' | 'get' | 'unreadCount' | 'markRead' | 'markAllRead' | 'remove'
  >;
  hooks: Pick<AuthHooks, 'authenticate'>;
  metrics: Pick<Metrics, 'messagesSent'>;
  /** SKYPUSH_MAX_MESSAGE_BYTES, for the body schema. */
  maxMessageBytes: number;
  /** The per-sender limit of POST /messages/send (SKYPUSH_SEND_RATE_LIMIT[_ADMIN]). */
  sendLimit: SendQuota;
}

/** Registers the routes in the order the OpenAPI document lists them. */
export async function messageRoutes(app: FastifyInstance, deps: MessageRouteDeps): Promise<void> {
  sendRoute(app, deps);
  inboxRoutes(app, deps);
  oneMessageRoutes(app, deps);
}

/** POST /api/v1/messages/send */
function sendRoute(
  app: FastifyInstance,
  { messages, hooks, metrics, maxMessageBytes, sendLimit }: MessageRouteDeps,
): void {
  const quota = sendQuota(sendLimit);
  app.post<{ Body: SendInput; Headers: { 'idempotency-key'?: string } }>(
    '/api/v1/messages/send',
    {
      onRequest: hooks.authenticate,
      ...(quota && { config: { rateLimit: quota } }),
      schema: sendSchema(maxMessageBytes),
    },
    async (request, reply) => {
      const result = await messages.send(
        principalOf(request),
        request.body,
        request.headers['idempotency-key'],
        // Built only for a send that waits in the wide lane.
        () => clientGone(request, reply, 'the send had its turn'),
      );
      metrics.messagesSent.inc({ target_type: result.targetType });
      return ok(result, 'message sent');
    },
  );
}

/** The whole inbox: the page list, the unread count, mark all read. */
function inboxRoutes(app: FastifyInstance, { messages, hooks }: MessageRouteDeps): void {
  const onRequest = hooks.authenticate;
  app.get<{
    Querystring: {
      cursor?: string;
      limit?: string;
      status?: 'unread' | 'read' | 'all';
      messageType?: string;
    };
  }>('/api/v1/messages', { onRequest, schema: listSchema }, async (request) => {
    const q = request.query;
    return ok(
      await messages.list(principalOf(request).userId, {
        ...(q.cursor !== undefined && { cursor: q.cursor }),
        ...(q.limit !== undefined && { limit: Number(q.limit) }),
        ...(q.status !== undefined && { status: q.status }),
        ...(q.messageType !== undefined && { messageType: q.messageType }),
      }),
    );
  });

  app.get('/api/v1/messages/unread-count', { onRequest, schema: unreadCountSchema }, async (request) =>
    ok({ count: await messages.unreadCount(principalOf(request).userId) }),
  );

  app.put('/api/v1/messages/read-all', { onRequest, schema: readAllSchema }, async (request) => {
    const r = await messages.markAllRead(principalOf(request).userId);
    return ok({ count: r.count }, 'all messages marked read');
  });
}

/** One message of the caller's inbox by id: get, mark read, delete. */
function oneMessageRoutes(app: FastifyInstance, { messages, hooks }: MessageRouteDeps): void {
  const onRequest = hooks.authenticate;
  const idOf = (request: { params: { id: string } }) => Number(request.params.id);

  app.get<{ Params: { id: string } }>(
    '/api/v1/messages/:id',
    { onRequest, schema: getSchema },
    async (request) => ok(await messages.get(principalOf(request).userId, idOf(request))),
  );

  app.put<{ Params: { id: string } }>(
    '/api/v1/messages/:id/read',
    { onRequest, schema: markReadSchema },
    async (request) =>
      ok(await messages.markRead(principalOf(request).userId, idOf(request)), 'message marked read'),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/messages/:id',
    { onRequest, schema: deleteSchema },
    async (request) =>
      ok(await messages.remove(principalOf(request).userId, idOf(request)), 'message deleted'),
  );
}
