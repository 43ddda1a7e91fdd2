/**
 * skypush/client: the WebSocket client and REST helpers, for browsers and Node.
 *
 * @example
 * import { SkypushClient, SkypushRest } from 'skypush/client';
 * const rest = new SkypushRest({ baseUrl: 'https://push.example.com', getToken: () => token });
 * const client = new SkypushClient({
 *   url: 'wss://push.example.com/api/v1/ws/messages',
 *   getTicket: async () => (await rest.ticket()).ticket,
 *   onResync: () => rest.inbox().then(render),
 * });
 * client.on('NEW_MESSAGE', (m) => console.log(m.title));
 * client.connect();
 */
export { SkypushClient } from './client.ts';
export { SkypushRest, SkypushApiError, type RestOptions, type FetchLike } from './rest.ts';
export { backoffCeiling, backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.ts';
export type {
  ClientOptions,
  Clock,
  CredentialReason,
  ResyncInfo,
  WebSocketCtor,
  WebSocketLike,
} from './options.ts';
export type { ClientEvents, ConnectionState, DisconnectInfo, FrameInfo, ReconnectInfo } from './events.ts';
export type * from './api-types.ts';
export {
  CloseCode,
  FrameType,
  closeAction,
  type CloseAction,
  type ConnectedPayload,
  type Frame,
  type FrameData,
  type MessagePayload,
} from '../src/protocol.ts';
