/**
 * Builds the Fastify app (routes, schemas, envelope, error mapping, OpenAPI at /docs) without listening:
 * tests drive it on port 0; main.ts listens. No business logic lives here.
 */
import { isUtf8 } from 'node:buffer';
import { createServer } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AuthService } from '../auth/auth.service.ts';
import type { Config } from '../config.ts';
import type { MessageService } from '../messages/message.service.ts';
import type { Metrics } from '../metrics.ts';
import type { Presence } from '../realtime/presence.ts';
import type { Store } from '../store/database.ts';
import type { UserService } from '../users/user.service.ts';
import { AppError, Errors } from '../errors.ts';
import { createAuthHooks } from './auth-hooks.ts';
import { checkBodyText } from './body-text.ts';
import { clientErrorHandler, expectationFailed } from './client-error.ts';
import { frameworkErrors, installErrorHandler } from './error-handler.ts';
import { registerRateLimit } from './rate-limit.ts';
import type { SendQuota } from './send-quota.ts';
import { authRoutes } from './routes/auth.routes.ts';
import { messageRoutes } from './routes/messages.routes.ts';
import { opsRoutes } from './routes/ops.routes.ts';
import { realtimeRoutes } from './routes/realtime.routes.ts';
import { userRoutes } from './routes/users.routes.ts';

export interface HttpDeps {
  config: Config;
  logger: Logger;
  store: Store;
  auth: AuthService;
  users: UserService;
  messages: MessageService;
  presence: Presence;
  metrics: Metrics;
  isShuttingDown: () => boolean;
  /** The cluster's Redis, for request quotas shared by every node. */
  redis?: Redis;
  /** Extra route plugins (the web pages). */
  plugins?: Array<(app: FastifyInstance) => Promise<void>>;
}

export async function buildHttpServer(deps: HttpDeps): Promise<FastifyInstance> {
  const app = createFastify(deps);
  app.decorateRequest('principal', null);
  installJsonParser(app);
  installErrorHandler(app, deps.metrics);
  installHooks(app, deps);
  await registerDocs(app);
  // Before the routes: as each route is declared, the plugin appends its hook after the route's own
  // onRequest, so a quota keyed by user runs after authentication (send-quota.ts).
  await registerRateLimit(app, {
    prefix: deps.config.redis.prefix,
    ...(deps.redis && { redis: deps.redis }),
  });
  await registerRoutes(app, deps);
  for (const plugin of deps.plugins ?? []) await app.register(plugin);
  return app;
}

/** The Fastify instance with its limits, its Node server and its error mapping for requests no route saw. */
function createFastify(deps: HttpDeps): FastifyInstance {
  return Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.config.http.bodyLimit,
    trustProxy: deps.config.http.trustProxy,
    // Slowloris (upgrades included): Node enforces headersTimeout only every connectionsCheckingInterval,
    // 30 s by default, so the interval is lowered with it.
    // Node answers a missing Host and an unknown Expect itself with an empty body: the first is checked
    // in an onRequest hook (installHooks), the second answered by expectationFailed, both with the envelope.
    serverFactory: (handler) =>
      createServer(
        {
          headersTimeout: 10_000,
          requestTimeout: 30_000,
          connectionsCheckingInterval: 1_000,
          requireHostHeader: false,
        },
        handler,
      ).on('checkExpectation', expectationFailed),
    ajv: {
      customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false },
    },
    return503OnClosing: true,
    frameworkErrors,
    clientErrorHandler,
  });
}

/** JSON only: a text/plain body is a 415, not a string that fails validation later. */
function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('text/plain');
  // Many HTTP clients send Content-Type: application/json on every request: an empty body then means "no
  // body" on the routes that take none (PUT …/read, DELETE). Routes with a body still refuse it (40002).
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  // Text that is not valid Unicode is refused before any route sees it (body-text.ts): raw bytes that
  // are not UTF-8 here, lone surrogates and over-deep nesting after parsing.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const raw = body as Buffer;
    if (raw.length === 0 && request.routeOptions.schema?.body === undefined) return done(null, undefined);
    if (!isUtf8(raw)) return done(new AppError(Errors.MALFORMED_JSON, 'request body is not valid UTF-8'));
    json(request, raw.toString('utf8'), (err: Error | null, parsed?: unknown) => {
      if (err) return done(err);
      try {
        checkBodyText(parsed);
      } catch (e) {
        return done(e as Error);
      }
      done(null, parsed);
    });
  });
}

/** The hooks every request passes: request metrics, the Host check, and no keep-alive while shutting down. */
function installHooks(app: FastifyInstance, { metrics, isShuttingDown }: HttpDeps): void {
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unknown',
        status: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });
  app.addHook('onRequest', async (request, reply) => {
    // HTTP/1.1 requires Host (RFC 9112 §3.2); Node's own check would answer with an empty body.
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined)
      throw new AppError(Errors.BAD_REQUEST, 'missing Host header');
    if (isShuttingDown()) void reply.header('connection', 'close');
  });
}

/** The OpenAPI document of every route declared after it, served at /docs. */
async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'skypush',
        description:
          'Message inbox with WebSocket push. Every response is {code, message, data}; code 0 = success.',
        version: '0.1.0',
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}

/** Each route module in its own plugin scope, given only what it uses (and importing nothing from here). */
async function registerRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  const { auth, users, messages, presence, metrics, store, isShuttingDown, config } = deps;
  const hooks = createAuthHooks(auth);
  const sendLimit: SendQuota = {
    perMinute: config.messages.sendRateLimit,
    adminPerMinute: config.messages.sendRateLimitAdmin,
  };
  const { maxMessageBytes } = config.messages;
  const routes: Array<(scope: FastifyInstance) => Promise<void>> = [
    (scope) => authRoutes(scope, { auth, hooks, loginRateLimit: config.auth.loginRateLimit }),
    (scope) => userRoutes(scope, { users, hooks }),
    (scope) => messageRoutes(scope, { messages, hooks, metrics, maxMessageBytes, sendLimit }),
    (scope) => realtimeRoutes(scope, { auth, messages, presence, hooks, sendLimit }),
    (scope) => opsRoutes(scope, { store, metrics, isShuttingDown }),
  ];
  for (const register of routes) await app.register(async (scope) => register(scope));
}
