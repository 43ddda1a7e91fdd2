/**
 * The one error catalogue. Every error the HTTP API can return is listed here with a stable numeric
 * code, its HTTP status and a default message. Codes are never reused; a test checks they are unique
 * and that docs/API.md lists each one.
 *
 * Rule: a generic error's code equals its HTTP status (the seed answers `{"code":401,…}`); a specific
 * error's code is status × 100 + n, so `Math.floor(code / 100)` is its status.
 */
export interface ErrorSpec {
  readonly code: number;
  readonly status: number;
  readonly message: string;
}

function spec(code: number, status: number, message: string): ErrorSpec {
  return Object.freeze({ code, status, message });
}

export const Errors = Object.freeze({
  BAD_REQUEST: spec(400, 400, 'bad request'),
  VALIDATION_FAILED: spec(40001, 400, 'request validation failed'),
  MALFORMED_JSON: spec(40002, 400, 'request body is not valid JSON'),
  UNKNOWN_TARGETS: spec(40003, 400, 'some target users do not exist'),
  INVALID_CURSOR: spec(40004, 400, 'invalid cursor'),
  PASSWORD_POLICY: spec(40005, 400, 'password must be 8 to 1024 characters'),
  TOO_MANY_TARGETS: spec(40006, 400, 'too many target users'),
  UNAUTHENTICATED: spec(401, 401, 'unauthenticated'),
  INVALID_CREDENTIALS: spec(40101, 401, 'invalid username or password'),
  TOKEN_EXPIRED: spec(40102, 401, 'token expired'),
  INVALID_TICKET: spec(40103, 401, 'invalid or used ticket'),
  FORBIDDEN: spec(403, 403, 'forbidden'),
  ADMIN_REQUIRED: spec(40301, 403, 'admin role required'),
  ORIGIN_NOT_ALLOWED: spec(40302, 403, 'origin not allowed'),
  NOT_FOUND: spec(404, 404, 'not found'),
  METHOD_NOT_ALLOWED: spec(405, 405, 'method not allowed'),
  REQUEST_TIMEOUT: spec(408, 408, 'request headers or body not received in time'),
  CONFLICT: spec(409, 409, 'conflict'),
  USERNAME_TAKEN: spec(40901, 409, 'username already exists'),
  USER_ID_TAKEN: spec(40902, 409, 'user id already exists'),
  IDEMPOTENCY_KEY_REUSED: spec(40903, 409, 'idempotency key was used with a different request'),
  BODY_TOO_LARGE: spec(413, 413, 'request body too large'),
  MESSAGE_TOO_LARGE: spec(41301, 413, 'message larger than SKYPUSH_MAX_MESSAGE_BYTES'),
  SEND_TOO_LARGE: spec(41302, 413, 'targets × message bytes over SKYPUSH_MAX_SEND_BYTES'),
  UNSUPPORTED_MEDIA_TYPE: spec(415, 415, 'unsupported media type; send application/json'),
  EXPECTATION_FAILED: spec(417, 417, 'unsupported Expect header; only 100-continue is understood'),
  TOO_MANY_REQUESTS: spec(429, 429, 'too many requests'),
  HEADERS_TOO_LARGE: spec(431, 431, 'request headers too large'),
  LOGIN_LOCKED: spec(42901, 429, 'too many failed logins; try again later'),
  TOO_MANY_CONNECTIONS_USER: spec(42902, 429, 'too many connections for this user'),
  INTERNAL: spec(500, 500, 'internal server error'),
  UNAVAILABLE: spec(503, 503, 'service unavailable'),
  DATABASE_UNAVAILABLE: spec(50301, 503, 'database unavailable'),
  SHUTTING_DOWN: spec(50302, 503, 'server is shutting down'),
  SERVER_FULL: spec(50303, 503, 'too many connections on this node'),
  HASHER_BUSY: spec(50304, 503, 'login service busy; try again shortly'),
  WIDE_SENDS_BUSY: spec(50305, 503, 'too many sends to many users waiting on this node; try again shortly'),
});

/** An error with a catalogue entry; the HTTP layer turns it into the `{code,message,data}` envelope. */
export class AppError extends Error {
  readonly code: number;
  readonly status: number;
  readonly data: unknown;
  readonly headers: Record<string, string>;

  constructor(
    spec: ErrorSpec,
    message?: string,
    opts: { data?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message ?? spec.message);
    this.name = 'AppError';
    this.code = spec.code;
    this.status = spec.status;
    this.data = opts.data ?? null;
    this.headers = opts.headers ?? {};
  }
}

/** True when `e` is an AppError of the given kind. */
export function isAppError(e: unknown, spec?: ErrorSpec): e is AppError {
  return e instanceof AppError && (spec === undefined || e.code === spec.code);
}
