// auditContextMiddleware (Express) and fastifyAuditContext with real HTTP servers, writes through
// Kysely and Drizzle on an audited pool, 200 concurrent requests with distinct actors.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { Pool } from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql as dsql } from 'drizzle-orm';
import { context as otelContext, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { auditContextMiddleware, auditPool, fastifyAuditContext } from '../src/integrations';
import { getAuditContext, runWithAuditContext } from '../src/session';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;
let raw: Pool;
let pool: Pool;
let kysely: Kysely<any>;
let server: Server;
let expressUrl: string;
let fastify: FastifyInstance;
let fastifyUrl: string;
const tracer = new BasicTracerProvider().getTracer('test');

beforeAll(async () => {
  otelContext.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  db = await createTestDatabase('int_http');
  await db.sql(`CREATE TABLE users (id int PRIMARY KEY, email text); CREATE TABLE items (id int PRIMARY KEY, name text)`);
  await db.install({ tables: { 'public.users': { mode: 'statement' }, 'public.items': { mode: 'row' } } });
  raw = new Pool({ connectionString: db.url, max: 5 });
  raw.on('error', () => undefined);
  pool = auditPool(raw);
  kysely = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  const d = drizzle(pool);

  const app = express();
  app.set('trust proxy', false);
  app.use((req, _res, next) => { (req as any).user = req.headers['x-user']; next(); });
  app.use((req, _res, next) => {
    if (req.headers['x-traced'] === undefined) return next();
    tracer.startActiveSpan('request', (span) => { (req as any).span = span; next(); });
  });
  app.use(auditContextMiddleware({ actor: async (req) => (req as any).user, trustedProxies: ['127.0.0.1', '::1'] }));
  app.post('/users/:id', async (req, res, next) => {
    try {
      const id = Number(req.params.id);
      await kysely.insertInto('users').values({ id, email: `u${id}` }).execute();
      await sleep(Math.random() * 5);
      await kysely.transaction().execute((trx) => trx.insertInto('items').values({ id, name: `i${id}` }).execute());
      res.json({ context: getAuditContext(), traceId: (req as any).span?.spanContext().traceId });
    } catch (err) {
      next(err);
    }
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  expressUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  fastify = Fastify();
  fastify.addHook('onRequest', async (req) => { (req as any).user = req.headers['x-user']; });
  await fastify.register(fastifyAuditContext, { actor: (req: any) => req.user, correlationIdHeader: 'X-Request-Id' });
  // Routes registered in their own (encapsulated) plugin: the hooks still reach them.
  await fastify.register(async (child) => {
    child.post('/items/:id', async (req: any) => {
      const id = Number(req.params.id);
      await d.execute(dsql`INSERT INTO items VALUES (${id}, ${'f' + id})`);
      await sleep(Math.random() * 5);
      await d.transaction((tx) => tx.execute(dsql`INSERT INTO users VALUES (${id}, ${'f' + id})`));
      return { context: getAuditContext(), body: req.body };
    });
  });
  fastifyUrl = await fastify.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await fastify.close();
  await kysely.destroy();
  await db.drop();
});
beforeEach(() => db.sql('TRUNCATE users, items; DELETE FROM auditlog.log_entry'));

async function misattributed(expectedActor: (pk: string) => string): Promise<number> {
  const entries = await db.entries();
  return entries.filter((e) => e.actor !== expectedActor(e.object_pk!)).length;
}

describe('Express + Kysely', () => {
  it('sets actor, correlation id (generated and echoed), client IP, method and route', async () => {
    const res = await fetch(`${expressUrl}/users/1`, { method: 'POST', headers: { 'x-user': 'alice' } });
    const cid = res.headers.get('x-correlation-id');
    expect(cid).toMatch(/^[0-9a-f-]{36}$/);
    const body = (await res.json()) as any;
    expect(body.context).toMatchObject({ actor: 'alice', cid, remoteAddr: '127.0.0.1', data: { method: 'POST', route: '/users/:id' } });
    const entries = await db.entries();
    expect(entries).toHaveLength(2);
    for (const e of entries) {
      expect(e).toMatchObject({ actor: 'alice', cid, remote_addr: '127.0.0.1', additional_data: { method: 'POST', route: '/users/:id' } });
    }
  });

  it('keeps a valid incoming correlation id, replaces an invalid one', async () => {
    const ok = await fetch(`${expressUrl}/users/1`, { method: 'POST', headers: { 'x-correlation-id': 'abc-123' } });
    expect(ok.headers.get('x-correlation-id')).toBe('abc-123');
    const bad = await fetch(`${expressUrl}/users/2`, { method: 'POST', headers: { 'x-correlation-id': 'a b;<script>' } });
    expect(bad.headers.get('x-correlation-id')).toMatch(/^[0-9a-f-]{36}$/);
    const long = await fetch(`${expressUrl}/users/3`, { method: 'POST', headers: { 'x-correlation-id': 'x'.repeat(129) } });
    expect(long.headers.get('x-correlation-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect((await db.entries()).map((e) => e.cid).slice(0, 2)).toEqual(['abc-123', 'abc-123']);
  });

  it('takes X-Forwarded-For only from a trusted proxy, skipping trusted hops', async () => {
    const res = await fetch(`${expressUrl}/users/1`, { method: 'POST', headers: { 'x-forwarded-for': '203.0.113.9, 127.0.0.1' } });
    expect(((await res.json()) as any).context.remoteAddr).toBe('203.0.113.9');
    expect((await db.entries())[0]!.remote_addr).toBe('203.0.113.9');
  });

  it('puts the active span\'s trace id in additional_data', async () => {
    const res = await fetch(`${expressUrl}/users/1`, { method: 'POST', headers: { 'x-user': 'tracy', 'x-traced': '1' } });
    const { traceId } = (await res.json()) as any;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    for (const e of await db.entries()) expect(e.additional_data).toMatchObject({ trace_id: traceId });
  });

  it('200 concurrent requests with distinct actors: 0 mis-attributed entries', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => i + 1);
    const responses = await Promise.all(ids.map((id) =>
      fetch(`${expressUrl}/users/${id}`, { method: 'POST', headers: { 'x-user': `user-${id}` } })));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(await db.entries()).toHaveLength(400);
    expect(await misattributed((pk) => `user-${pk}`)).toBe(0);
  });
});

describe('Fastify + Drizzle', () => {
  it('plugin reaches routes in other plugins; custom correlation header echoed; body parsing keeps the context', async () => {
    const res = await fetch(`${fastifyUrl}/items/1`, {
      method: 'POST', headers: { 'x-user': 'fay', 'x-request-id': 'req-77', 'content-type': 'application/json' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(res.headers.get('x-request-id')).toBe('req-77');
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ body: { a: 1 }, context: { actor: 'fay', cid: 'req-77', data: { method: 'POST', route: '/items/:id' } } });
    const entries = await db.entries();
    expect(entries.map((e) => [e.actor, e.cid])).toEqual([['fay', 'req-77'], ['fay', 'req-77']]);
    expect(entries[0]!.remote_addr).toBe('127.0.0.1');
  });

  it('ignores X-Forwarded-For by default (no trusted proxy declared)', async () => {
    await fetch(`${fastifyUrl}/items/1`, { method: 'POST', headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect((await db.entries())[0]!.remote_addr).toBe('127.0.0.1');
  });

  it('200 concurrent requests with distinct actors, JSON bodies: 0 mis-attributed entries', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => i + 1);
    const responses = await Promise.all(ids.map((id) => fetch(`${fastifyUrl}/items/${id}`, {
      method: 'POST', headers: { 'x-user': `fuser-${id}`, 'content-type': 'application/json' }, body: JSON.stringify({ id }),
    })));
    expect(responses.every((r) => r.status === 200)).toBe(true);
    expect(await db.entries()).toHaveLength(400);
    expect(await misattributed((pk) => `fuser-${pk}`)).toBe(0);
  });
});

it('auditPool adds the active span\'s trace id to the ambient context', async () => {
  const traceId = await runWithAuditContext({ actor: 'job' }, () => tracer.startActiveSpan('job', async (span) => {
    await pool.query('INSERT INTO users VALUES ($1, $2)', [9, 'x']);
    span.end();
    return span.spanContext().traceId;
  }));
  expect((await db.entries())[0]!.additional_data).toEqual({ trace_id: traceId });
  expect(trace.getActiveSpan()).toBeUndefined();
});

it('rejects bad options with a clear error', () => {
  expect(() => auditContextMiddleware({ trustedProxies: ['10.0.0.0/33'] })).toThrow(/trustedProxies: "10.0.0.0\/33"/);
  expect(() => auditContextMiddleware({ correlationIdHeader: 'bad header' })).toThrow(/correlationIdHeader/);
});
