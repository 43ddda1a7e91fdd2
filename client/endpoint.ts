/** The WebSocket URL (and sub-protocols) for one connection attempt, credentials and cursor included. */
import { SUBPROTOCOL } from '../src/protocol.ts';
import type { CredentialReason } from './options.ts';

export interface EndpointOptions {
  url: string;
  getTicket?: ((reason: CredentialReason) => string | Promise<string>) | undefined;
  getToken?: ((reason: CredentialReason) => string | Promise<string>) | undefined;
  tokenInQuery?: boolean | undefined;
}

/**
 * A ticket goes in `?ticket=`; a token in the sub-protocol list, or `?token=` when asked. `cursor` is
 * read after the credentials arrive, so the newest position is the one resumed from.
 */
export async function endpointFor(
  o: EndpointOptions,
  reason: CredentialReason,
  cursor: () => string | undefined,
): Promise<{ url: string; protocols?: string[] }> {
  const url = new URL(o.url);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  let protocols: string[] | undefined;
  if (o.getTicket) {
    url.searchParams.set('ticket', await o.getTicket(reason));
  } else {
    const token = await (o.getToken as NonNullable<EndpointOptions['getToken']>)(reason);
    if (o.tokenInQuery) url.searchParams.set('token', token);
    else protocols = [SUBPROTOCOL, token];
  }
  const since = cursor();
  if (since !== undefined) url.searchParams.set('since', since);
  return protocols ? { url: url.toString(), protocols } : { url: url.toString() };
}
