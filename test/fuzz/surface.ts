/**
 * What there is to attack, read from the app itself so that a new route is fuzzed without editing the
 * suite: every route Fastify knows (hidden ones included, from printRoutes) and the names and enum
 * values the OpenAPI document uses for bodies and query strings.
 */
import { createApp } from '../../src/app.ts';
import { WS_PATH } from '../../src/realtime/upgrade.ts';
import { webPages } from '../../src/web/pages.ts';
import { testConfig } from '../helpers/app.ts';

export interface Route {
  method: string;
  /** Fastify's template: `/api/v1/users/:id`, `/docs/*`. */
  path: string;
}

export interface Surface {
  routes: Route[];
  /** Property names of request bodies, at any depth. */
  bodyKeys: string[];
  /** Query-string parameter names. */
  queryKeys: string[];
  /** Every enum value in a request schema. */
  enums: string[];
}

/** Parses `printRoutes({ commonPrefix: false })`: one node per line, children indented by 4. */
export function parseRouteTree(tree: string): Route[] {
  const stack: string[] = [];
  const routes: Route[] = [];
  for (const line of tree.split('\n')) {
    const at = line.indexOf('── ');
    if (at < 0) continue;
    const depth = Math.floor(at / 4);
    const m = /^(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line.slice(at + 3));
    const segment = m?.[1] ?? '';
    stack.length = depth;
    const path = (stack[depth - 1] ?? '') + segment;
    stack.push(path);
    for (const method of (m?.[2] ?? '').split(',').map((s) => s.trim()))
      if (method) routes.push({ method, path });
  }
  return routes;
}

type Schema = Record<string, unknown>;

function collect(schema: unknown, keys: Set<string>, enums: Set<string>): void {
  if (Array.isArray(schema)) return schema.forEach((s) => collect(s, keys, enums));
  if (typeof schema !== 'object' || schema === null) return;
  const s = schema as Schema;
  if (typeof s['properties'] === 'object' && s['properties'] !== null)
    for (const k of Object.keys(s['properties'])) keys.add(k);
  if (Array.isArray(s['enum'])) for (const v of s['enum']) if (typeof v === 'string') enums.add(v);
  for (const v of Object.values(s)) collect(v, keys, enums);
}

/** Builds the app in this process (in-memory SQLite), reads its routes and OpenAPI document, closes it. */
export async function readSurface(): Promise<Surface> {
  const app = await createApp(
    testConfig({ SKYPUSH_DATABASE_URL: 'sqlite::memory:', SKYPUSH_LOG_LEVEL: 'silent' }),
    { plugins: [webPages] },
  );
  try {
    await app.http.ready();
    const routes = parseRouteTree(app.http.printRoutes({ commonPrefix: false }));
    routes.push({ method: 'GET', path: WS_PATH });
    const doc = (
      app.http as unknown as { swagger(): { paths: Record<string, Record<string, Schema>> } }
    ).swagger();
    const bodyKeys = new Set<string>();
    const queryKeys = new Set<string>(['since', 'token', 'ticket']);
    const enums = new Set<string>();
    for (const ops of Object.values(doc.paths))
      for (const op of Object.values(ops)) {
        collect(op['requestBody'], bodyKeys, enums);
        for (const p of (op['parameters'] as Array<{ in: string; name: string; schema?: unknown }>) ?? []) {
          if (p.in === 'query') queryKeys.add(p.name);
          collect(p.schema, bodyKeys, enums);
        }
      }
    return { routes, bodyKeys: [...bodyKeys], queryKeys: [...queryKeys], enums: [...enums] };
  } finally {
    await app.close();
  }
}
