/**
 * The inbox (/) and admin console (/admin) pages and their assets, served from the folder that
 * scripts/build-web.ts fills (dist/web by default; `npm run build` builds it). Nothing is fetched from
 * a CDN. Assets have content-hashed names, so they are cached for a year; the HTML is revalidated.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { AppError, Errors } from '../errors.ts';

const CONTENT_TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  map: 'application/json; charset=utf-8',
};
const ASSET_NAME = /^[A-Za-z0-9_-]+\.(js|css|map)$/;

/**
 * Scripts and styles only from this origin, sockets only to it, no inline code: even if markup were
 * injected somewhere, it could not run.
 */
const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-cache',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const NOT_BUILT =
  '<!doctype html><meta charset="utf-8"><title>skypush</title><p>skypush is running, but its web pages are not built: run <code>npm run build</code>. API docs: <a href="/docs">/docs</a></p>';

/** `<package root>/dist/web`, found from this file whether it runs from src/ (tsx) or dist/src/. */
export function defaultWebDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'web');
    dir = dirname(dir);
  }
  return join(process.cwd(), 'dist', 'web');
}

export interface WebPagesOptions {
  /** Folder with index.html, admin.html and assets/ (default: defaultWebDir()). */
  dir?: string;
}

/** A Fastify plugin serving the pages from `opts.dir`. */
export function createWebPages(opts: WebPagesOptions = {}): (app: FastifyInstance) => Promise<void> {
  const dir = opts.dir ?? defaultWebDir();

  async function page(reply: FastifyReply, file: string) {
    void reply.headers(HTML_HEADERS);
    return readFile(join(dir, file), 'utf8').catch(() => NOT_BUILT);
  }

  return async (app) => {
    app.get('/', { schema: { hide: true } }, (_req, reply) => page(reply, 'index.html'));
    app.get('/admin', { schema: { hide: true } }, (_req, reply) => page(reply, 'admin.html'));
    app.get<{ Params: { file: string } }>('/assets/:file', { schema: { hide: true } }, async (req, reply) => {
      const m = ASSET_NAME.exec(req.params.file);
      const body = m
        ? await readFile(join(dir, 'assets', req.params.file)).catch(() => undefined)
        : undefined;
      if (!m || !body) throw new AppError(Errors.NOT_FOUND, 'no such asset');
      return reply
        .headers({
          'content-type': CONTENT_TYPES[m[1] as string],
          'cache-control': 'public, max-age=31536000, immutable',
          'x-content-type-options': 'nosniff',
        })
        .send(body);
    });
  };
}

/** The pages from the default folder (what main.ts serves). */
export const webPages = createWebPages();
