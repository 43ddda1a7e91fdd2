/** Shared pieces of the SDK-against-a-real-server tests. */
import WebSocket from 'ws';
import { SkypushClient, SkypushRest, type ClientEvents, type ClientOptions } from '../../client/index.ts';

/** Tight backoff so reconnect tests run in well under a second per retry. */
export const FAST = { baseMs: 50, maxMs: 400, factor: 2 };

export function makeClient(wsUrl: string, o: Partial<ClientOptions>): SkypushClient {
  return new SkypushClient({ url: wsUrl, WebSocket, backoff: FAST, ...o } as ClientOptions);
}

export function restFor(url: string, token?: string): SkypushRest {
  return new SkypushRest({ baseUrl: url, getToken: () => token });
}

/** Resolves with the arguments of the next `type` event matching `pred`. */
export function next<K extends keyof ClientEvents>(
  client: SkypushClient,
  type: K,
  pred: (...args: ClientEvents[K]) => boolean = () => true,
  timeoutMs = 5000,
): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${String(type)}`));
    }, timeoutMs);
    const off = client.on(type, (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
