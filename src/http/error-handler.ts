/**
 * Turns every failure into the envelope with the right status: AppErrors from the catalogue, Fastify's
 * validation and body-parsing errors, database outages (503), and anything else (500, logged, no stack
 * to the client). Fastify's default error shape never reaches a client.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, Errors, type ErrorSpec } from '../errors.ts';
import type { Metrics } from '../metrics.ts';

const FASTIFY_CODES: Record<string, ErrorSpec> = {
  FST_ERR_CTP_BODY_TOO_LARGE: Errors.BODY_TOO_LARGE,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: Errors.UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_CTP_EMPTY_JSON_BODY: Errors.MALFORMED_JSON,
  FST_ERR_CTP_INVALID_JSON_BODY: Errors.MALFORMED_JSON,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: Errors.BAD_REQUEST,
};

const DB_DOWN_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
  '57014',
  '08000',
  '08003',
  '08006',
  'SQLITE_BUSY',
]);

/** True for errors that mean "the database is unreachable or too slow", not "the request is wrong". */
export function isDatabaseUnavailable(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  if (err?.code && (DB_DOWN_CODES.has(err.code) || err.code.startsWith('SQLITE_BUSY'))) return true;
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|connect ECONNREFUSED/i.test(
    err?.message ?? '',
  );
}

export function toAppError(e: unknown): AppError | undefined {
  if (e instanceof AppError) return e;
  const err = e as FastifyError & {
    validation?: Array<{ instancePath: string; message?: string; params?: Record<string, unknown> }>;
  };
  if (err?.validation) {
    const first = err.validation[0];
    const missing = first?.params?.['missingProperty'];
    const extra = first?.params?.['additionalProperty'];
    const ctx = err.validationContext ?? 'body';
    const path = `${first?.instancePath ?? ''}${missing ? `/${String(missing)}` : ''}${extra ? `/${String(extra)}` : ''}`;
    const what = extra ? 'is not allowed' : (first?.message ?? 'is invalid');
    return new AppError(Errors.VALIDATION_FAILED, `${ctx}${path || ''} ${what}`, {
      data: { in: ctx, field: path || '/' },
    });
  }
  const spec = err?.code ? FASTIFY_CODES[err.code] : undefined;
  if (spec) return new AppError(spec);
  if (err instanceof SyntaxError || /prototype|constructor/.test(err?.message ?? '')) {
    if (err?.statusCode === 400)
      return new AppError(Errors.MALFORMED_JSON, `request body rejected: ${err.message}`);
  }
  // A database outage or a held SQLite write lock is usually over within a second or two.
  if (isDatabaseUnavailable(e))
    return new AppError(Errors.DATABASE_UNAVAILABLE, undefined, { headers: { 'retry-after': '1' } });
  if (typeof err?.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new AppError({
      code: err.statusCode,
      status: err.statusCode,
      message: err.message || 'bad request',
    });
  }
  return undefined;
}

/**
 * Fastify's router answers a malformed URL (`/%E0%A4%A`) or an over-long path parameter itself, in its
 * own error shape, without reaching setErrorHandler; passed as the `frameworkErrors` option, this
 * answers them with the envelope instead.
 */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const e =
    typeof error.statusCode === 'number' && error.statusCode < 500
      ? new AppError(Errors.BAD_REQUEST, 'malformed URL or path parameter')
      : new AppError(Errors.INTERNAL);
  void reply.code(e.status).send({ code: e.code, message: e.message, data: e.data });
}

export function installErrorHandler(app: FastifyInstance, metrics: Metrics): void {
  app.setErrorHandler((error, request, reply) => {
    const known = toAppError(error);
    if (known?.code === Errors.DATABASE_UNAVAILABLE.code) {
      metrics.dbErrors.inc();
      request.log.warn({ err: { message: (error as Error).message } }, 'database unavailable');
    }
    if (!known) {
      request.log.error({ err: error }, 'unhandled error');
    }
    const e = known ?? new AppError(Errors.INTERNAL);
    void reply.code(e.status).headers(e.headers).send({ code: e.code, message: e.message, data: e.data });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      code: Errors.NOT_FOUND.code,
      message: `route ${request.method} ${request.url.split('?')[0]} not found`,
      data: null,
    });
  });
}
