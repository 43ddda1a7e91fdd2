import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApp, type TestApp } from '../helpers/app.ts';

/** Every API route, as OpenAPI names it. */
const API_ROUTES: Array<[string, string]> = [
  ['post', '/api/v1/auth/login'],
  ['get', '/api/v1/auth/me'],
  ['post', '/api/v1/users'],
  ['get', '/api/v1/users'],
  ['get', '/api/v1/users/{id}'],
  ['patch', '/api/v1/users/{id}'],
  ['post', '/api/v1/users/bulk'],
  ['post', '/api/v1/messages/send'],
  ['get', '/api/v1/messages'],
  ['get', '/api/v1/messages/unread-count'],
  ['get', '/api/v1/messages/{id}'],
  ['put', '/api/v1/messages/{id}/read'],
  ['put', '/api/v1/messages/read-all'],
  ['delete', '/api/v1/messages/{id}'],
  ['post', '/api/v1/ws/ticket'],
  ['get', '/api/v1/ws/online/users'],
  ['get', '/api/v1/ws/online/check'],
  ['post', '/api/v1/ws/broadcast'],
];

describe('operations endpoints', () => {
  let t: TestApp;
  before(async () => {
    t = await startApp();
  });
  after(async () => t.close());

  it('answers /healthz with the envelope while the process is up', async () => {
    const r = await t.request('GET', '/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { code: 0, message: 'success', data: { status: 'ok' } });
  });

  it('answers /readyz with 200 when the database is reachable', async () => {
    const r = await t.request('GET', '/readyz');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data, { status: 'ready' });
  });

  it('exposes Prometheus metrics with the HTTP latency histogram and the messages counter', async () => {
    const u = await t.createUser('metered', { id: 7 });
    await t.request('POST', '/api/v1/messages/send', {
      token: t.adminToken,
      body: { title: 'm', content: 'c', targetType: 'user', targetIds: [u.id] },
    });
    const res = await fetch(`${t.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    assert.match(text, /^# TYPE skypush_http_request_duration_seconds histogram$/m);
    assert.match(
      text,
      /^skypush_http_request_duration_seconds_count\{method="POST",route="\/api\/v1\/messages\/send",status="200"\} 1$/m,
    );
    assert.match(text, /^skypush_messages_sent_total\{target_type="user"\} 1$/m);
    assert.match(text, /^# TYPE skypush_db_errors_total counter$/m);
  });

  it('serves Swagger UI at /docs', async () => {
    const res = await fetch(`${t.url}/docs`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await res.text(), /swagger/i);
  });

  it('serves an OpenAPI document at /docs/json listing every API route with its security', async () => {
    const r = await fetch(`${t.url}/docs/json`);
    assert.equal(r.status, 200);
    const doc = (await r.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { security?: unknown[] }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    assert.match(doc.openapi, /^3\./);
    for (const [method, path] of API_ROUTES) {
      assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is documented`);
      if (path !== '/api/v1/auth/login') {
        assert.deepEqual(doc.paths[path]?.[method]?.security, [{ bearerAuth: [] }], `${path} security`);
      }
    }
    assert.ok(doc.components.securitySchemes['bearerAuth']);
  });
});
