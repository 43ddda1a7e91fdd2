/** Small helpers for skypush's REST API: one method per route, the envelope unwrapped, errors typed. */
import type {
  CreateUserInput,
  InboxItem,
  InboxQuery,
  LoginResult,
  Page,
  PatchUserInput,
  SendInput,
  SendResult,
  SystemNotice,
  User,
  UserSummary,
} from './api-types.ts';

export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

export interface RestOptions {
  /** `https://push.example.com`; empty for the page's own origin (browser). */
  baseUrl?: string;
  /** The bearer token to send, read on every call (so a new login applies at once). */
  getToken?: () => string | undefined;
  fetch?: FetchLike;
}

/** A failed call: the HTTP status and the server's error code and message (see docs/API.md). */
export class SkypushApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly data: unknown = null,
  ) {
    super(message);
    this.name = 'SkypushApiError';
  }
}

/**
 * @example
 * const rest = new SkypushRest({ baseUrl: 'http://localhost:9090' });
 * const { accessToken } = await rest.login('alice', 'password');
 * const api = new SkypushRest({ baseUrl: 'http://localhost:9090', getToken: () => accessToken });
 * const { items, nextCursor } = await api.inbox({ status: 'unread' });
 */
export class SkypushRest {
  readonly #base: string;
  readonly #fetch: FetchLike;
  readonly #getToken: () => string | undefined;

  constructor(o: RestOptions = {}) {
    this.#base = (o.baseUrl ?? '').replace(/\/+$/, '');
    const f = o.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!f) throw new TypeError('no global fetch: pass options.fetch');
    this.#fetch = o.fetch ?? ((url, init) => f(url, init)); // unbound window.fetch throws "Illegal invocation"
    this.#getToken = o.getToken ?? (() => undefined);
  }

  /** Performs one call and returns the envelope's `data`; throws SkypushApiError on a non-zero code. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const h: Record<string, string> = { accept: 'application/json', ...headers };
    const token = this.#getToken();
    if (token) h['authorization'] = `Bearer ${token}`;
    if (body !== undefined) h['content-type'] = 'application/json';
    const res = await this.#fetch(this.#base + path, {
      method,
      headers: h,
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let env: { code?: number; message?: string; data?: unknown } | undefined;
    try {
      env = text ? (JSON.parse(text) as typeof env) : undefined;
    } catch {
      env = undefined;
    }
    if (!res.ok || !env || env.code !== 0) {
      throw new SkypushApiError(
        res.status,
        env?.code ?? res.status,
        env?.message ?? res.statusText,
        env?.data ?? null,
      );
    }
    return env.data as T;
  }

  login(username: string, password: string): Promise<LoginResult> {
    return this.request('POST', '/api/v1/auth/login', { username, password });
  }

  me(): Promise<UserSummary> {
    return this.request('GET', '/api/v1/auth/me');
  }

  /** One page of the inbox, newest first. */
  inbox(q: InboxQuery = {}): Promise<Page<InboxItem>> {
    const p = new URLSearchParams();
    if (q.status) p.set('status', q.status);
    if (q.cursor) p.set('cursor', q.cursor);
    if (q.limit !== undefined) p.set('limit', String(q.limit));
    if (q.messageType) p.set('messageType', q.messageType);
    const qs = p.toString();
    return this.request('GET', `/api/v1/messages${qs ? `?${qs}` : ''}`);
  }

  async unreadCount(): Promise<number> {
    return (await this.request<{ count: number }>('GET', '/api/v1/messages/unread-count')).count;
  }

  markRead(messageId: number): Promise<{ messageId: number; readAt: string }> {
    return this.request('PUT', `/api/v1/messages/${messageId}/read`);
  }

  markAllRead(): Promise<{ count: number }> {
    return this.request('PUT', '/api/v1/messages/read-all');
  }

  remove(messageId: number): Promise<{ messageId: number }> {
    return this.request('DELETE', `/api/v1/messages/${messageId}`);
  }

  /** Sends a message; an idempotency key makes a retry after a timeout safe. */
  send(input: SendInput, idempotencyKey?: string): Promise<SendResult> {
    return this.request(
      'POST',
      '/api/v1/messages/send',
      input,
      idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
    );
  }

  /** A one-time WebSocket ticket (valid 30 s): pass it to SkypushClient's `getTicket`. */
  ticket(): Promise<{ ticket: string; expiresIn: number }> {
    return this.request('POST', '/api/v1/ws/ticket');
  }

  // ---- admin ---------------------------------------------------------------------------------------

  broadcast(data: SystemNotice): Promise<{ recipients: number }> {
    return this.request('POST', '/api/v1/ws/broadcast', { type: 'SYSTEM_NOTIFY', data });
  }

  onlineUsers(): Promise<{ onlineCount: number; users: number[] }> {
    return this.request('GET', '/api/v1/ws/online/users');
  }

  /** Users by id, a page at a time; `q` keeps those whose username or display name contains it (or whose id it is). */
  users(cursor?: string, limit = 100, q?: string): Promise<Page<User>> {
    const params = new URLSearchParams({ limit: String(limit) });
    if (cursor) params.set('cursor', cursor);
    if (q) params.set('q', q);
    return this.request('GET', `/api/v1/users?${params}`);
  }

  createUser(input: CreateUserInput): Promise<User> {
    return this.request('POST', '/api/v1/users', input);
  }

  patchUser(id: number, patch: PatchUserInput): Promise<User> {
    return this.request('PATCH', `/api/v1/users/${id}`, patch);
  }
}
