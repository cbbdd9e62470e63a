// The viewer over HTTP: JSON API and pages with every filter, keyset pages, exact values,
// token on every request, read-only (405, READ ONLY transactions), CSP, escaping, mounting
// under Express and Fastify, the live stream, `auditlog serve`.
import { execFile, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import Fastify from 'fastify';
import { Pool, type PoolClient } from 'pg';
import { auditViewer, history, searchHistory, serveViewer, withAuditSession } from '../src';
import { CONTENT_SECURITY_POLICY } from '../src/viewer';
import { isLoopback } from '../src/viewer/server';
import type { AuditViewer, ViewerServer } from '../src/interfaces';
import { createTestDatabase, type TestDatabase } from './helpers';
import { BIG, seedViewerData } from './viewer-helpers';

const BIN = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const TOKEN = 'test-token-0123456789abcdef';

let db: TestDatabase;
let server: ViewerServer;
let base: string;
/** Every statement the viewer's pool ran, per client. */
const statements = new Map<PoolClient, string[]>();
let pool: Pool;

beforeAll(async () => {
  db = await createTestDatabase('viewer');
  await seedViewerData(db);
  pool = new Pool({ connectionString: db.url, max: 3 });
  pool.on('connect', (client) => {
    const list: string[] = [];
    statements.set(client, list);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
      const first = args[0] as string | { text: string };
      list.push(typeof first === 'string' ? first : first.text);
      return query(...args);
    };
  });
  server = await serveViewer({ pool, port: 0, log: () => undefined });
  base = server.url.replace(/\/$/, '');
});

afterAll(async () => {
  await server.close();
  await pool.end();
  await db.drop();
});

const get = async (url: string, init?: RequestInit) => fetch(url, { redirect: 'manual', ...init });
const json = async (url: string) => {
  const res = await get(url);
  expect(res.status).toBe(200);
  return (await res.json()) as any;
};
const ids = (entries: Array<{ id: string }>) => entries.map((e) => e.id);

test('the list is newest first and every filter matches history() with the same filter', async () => {
  const all = (await json(`${base}/api/entries`)).entries;
  const log = await db.entries();
  expect(ids(all)).toEqual(ids(log).reverse());
  const cases: Array<[string, Parameters<typeof history>[1]]> = [
    ['table=users', { table: 'users' }],
    ['table=public.order_items', { table: 'public.order_items' }],
    ['action=update', { actions: ['update'] }],
    ['action=insert,delete', { actions: ['insert', 'delete'] }],
    ['actor=alice', { actor: 'alice' }],
    ['cid=req-2', { cid: 'req-2' }],
    [`txid=${log[2]!.txid}`, { txid: log[2]!.txid }],
    [`since=${encodeURIComponent(log[2]!.ts.toISOString())}`, { since: log[2]!.ts }],
    [`since=2000-01-01&until=${encodeURIComponent(log[2]!.ts.toISOString())}`, { since: '2000-01-01', until: log[2]!.ts }],
    ['actor=alice&table=users&action=delete', { actor: 'alice', table: 'users', actions: ['delete'] }],
  ];
  for (const [query, filter] of cases) {
    const got = (await json(`${base}/api/entries?${query}`)).entries;
    const expected = (await history(db.pool, filter)).entries;
    expect([query, ids(got)]).toEqual([query, ids(expected)]);
    expect(got.length).toBeGreaterThan(0);
  }
});

test('free text q matches the object representation or primary key, with the other filters', async () => {
  const byRepr = (await json(`${base}/api/entries?q=ANN%40EXAMPLE`)).entries;
  expect(byRepr.map((e: any) => e.object_repr)).toEqual(['ann@example.org', 'ann@example.com']);
  const byPk = (await json(`${base}/api/entries?q=${encodeURIComponent('[7, 2]')}`)).entries;
  expect(byPk.map((e: any) => [e.table_name, e.action])).toEqual([['order_items', 'update'], ['order_items', 'insert']]);
  const combined = await json(`${base}/api/entries?q=ann&action=update`);
  expect(combined.entries.map((e: any) => e.object_repr)).toEqual(['ann@example.org']);
  expect(combined).toMatchObject({ nextCursor: null, partial: false });
});

test('pages are keyset-paginated: nextCursor walks every entry once, for plain and text-search lists', async () => {
  const all = ids(await db.entries()).reverse();
  for (const filter of ['', '&q=example']) {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await json(`${base}/api/entries?limit=2${filter}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.entries.length).toBeLessThanOrEqual(2);
      seen.push(...ids(page.entries));
      cursor = page.nextCursor;
    } while (cursor !== null);
    const expected = filter === '' ? all : ids((await db.entries(`object_repr LIKE '%example%'`))).reverse();
    expect(seen).toEqual(expected);
  }
});

test('a text search reads at most its scan limit per page and says so', async () => {
  // Newest first: delete of bob, update of order_items [7, 2], insert of it, update of ann, …
  const page = await searchHistory(db.pool, { text: 'ann', scanLimit: 2, limit: 10 });
  expect(page).toMatchObject({ entries: [], scanned: 2, partial: true });
  const next = await searchHistory(db.pool, { text: 'ann', scanLimit: 2, limit: 10, cursor: page.nextCursor });
  expect(next).toMatchObject({ scanned: 2, partial: true });
  expect(next.entries.map((e) => [e.action, e.object_repr])).toEqual([['update', 'ann@example.org']]);
});

test('an entry carries display names, masked values, the whole context and exact numbers, as the CLI prints it', async () => {
  const [insert] = await db.entries(`action = 'insert' AND object_pk = '1' AND table_name = 'users'`);
  const res = await get(`${base}/api/entries/${insert!.id}`);
  const text = await res.text();
  // Exact: the stored numeric comes back with every digit, not as 100000000000000000000.
  expect(text).toContain(`"balance": [\n      null,\n      ${BIG}\n    ]`);
  const entry = JSON.parse(text);
  expect(entry).toMatchObject({
    action: 'insert', actor: 'alice', cid: 'req-1', remote_addr: '10.0.0.1', db_user: expect.any(String),
    additional_data: { reason: 'signup' }, object_repr: 'ann@example.com',
  });
  expect(entry.fields.find((f: any) => f.field === 'email')).toMatchObject({ label: 'E-mail address', masked: false });
  expect(entry.fields.find((f: any) => f.field === 'ssn')).toMatchObject({ masked: true, new: '[masked]' });

  // The same values as `auditlog history --json` (where JSON.parse gives the same text).
  const cli = await new Promise<string>((resolve, reject) => execFile('node', [BIN, 'history', 'users', '1', '--json', '--database-url', db.url],
    (err, stdout) => (err ? reject(err) : resolve(stdout))));
  const fromCli = JSON.parse(cli).find((e: any) => e.id === insert!.id);
  for (const key of Object.keys(fromCli)) {
    if (key === 'changes') continue; // the CLI's JSON.parse rounds the numeric; compared below
    expect([key, entry[key]]).toEqual([key, fromCli[key]]);
  }
  expect(entry.changes.email).toEqual(fromCli.changes.email);

  const page = await (await get(`${base}/entries/${insert!.id}`)).text();
  expect(page).toContain('E-mail address');
  expect(page).toContain(BIG);
  expect(page).toMatch(/class="badge masked">masked</);
  expect(page).toContain('10.0.0.1');
  expect(page).toContain('&quot;reason&quot;: &quot;signup&quot;');
});

test('an object shows its timeline and its state at any instant', async () => {
  const entries = await db.entries(`table_name = 'users' AND object_pk = '1'`);
  // The insert's instant to the microsecond (a Date would cut it to the millisecond, before it).
  const [{ at }] = await db.sql(`SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at FROM auditlog.log_entry WHERE id = $1`, [entries[0]!.id]);
  const api = await json(`${base}/api/objects/public.users/1?at=${encodeURIComponent(at)}`);
  expect(ids(api.entries)).toEqual(ids(entries).reverse());
  expect(api.state).toMatchObject({ email: 'ann@example.com', ssn: '[masked]' });
  const now = await json(`${base}/api/objects/users/1`);
  expect(now.state).toMatchObject({ email: 'ann@example.org' });
  const gone = await json(`${base}/api/objects/users/2`);
  expect(gone.state).toBeNull();
  const composite = await json(`${base}/api/objects/order_items/${encodeURIComponent('[7, 2]')}`);
  expect(composite.state).toEqual({ order_id: 7, line: 2, qty: 5 });
  const page = await (await get(`${base}/objects/users/1?at=2000-01-01`)).text();
  expect(page).toContain('did not exist');
  expect(page).toContain('Timeline');
});

test('bad input is a 400 or 404 that says what is wrong, as JSON under /api', async () => {
  const bad = await get(`${base}/api/entries?since=yesterday`);
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as any).error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('since') });
  expect((await get(`${base}/api/entries/999999`)).status).toBe(404);
  expect((await get(`${base}/entries/abc`)).status).toBe(404);
  expect((await get(`${base}/nothing-here`)).status).toBe(404);
});

test('read-only: other methods answer 405, and every query runs inside a READ ONLY transaction', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    for (const p of ['/', '/api/entries', '/entries/1']) {
      const res = await get(`${base}${p}`, { method, body: method === 'DELETE' ? undefined : 'x=1' });
      expect([method, p, res.status, res.headers.get('allow')]).toEqual([method, p, 405, 'GET, HEAD']);
    }
  }
  expect((await get(`${base}/`, { method: 'HEAD' })).status).toBe(200);
  let transactions = 0;
  for (const list of statements.values()) {
    let open = false;
    for (const s of list) {
      if (s.startsWith('BEGIN')) {
        expect(s).toMatch(/READ ONLY/);
        open = true;
        transactions++;
      } else if (s === 'COMMIT' || s === 'ROLLBACK') {
        open = false;
      } else {
        expect([s.slice(0, 60), open]).toEqual([s.slice(0, 60), true]);
      }
    }
  }
  expect(transactions).toBeGreaterThan(10);
});

test('responses carry a strict CSP and pages have no inline script; log values are escaped', async () => {
  await withAuditSession(db.pool, { actor: '<script>alert(1)</script>', cid: '"><img src=x onerror=alert(2)>' }, async (c) => {
    await c.query(`INSERT INTO users (email) VALUES ('<svg onload=alert(3)>')`);
  });
  for (const p of ['/', '/api/entries', '/assets/viewer.js', '/entries/1']) {
    const res = await get(`${base}${p}`);
    expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  }
  expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe/);
  const page = await (await get(`${base}/`)).text();
  expect(page).not.toContain('<script>alert');
  expect(page).not.toContain('<img src=x');
  expect(page).not.toContain('<svg');
  expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  // Every <script> element loads the shipped file; none has a body.
  expect(page.match(/<script[^>]*>/g)).toEqual([expect.stringMatching(/^<script src="\/assets\/viewer\.js" defer>$/)]);
  expect(page).not.toMatch(/<script[^>]*>[^<]/);
  // No event-handler attribute in any tag (quoted attribute values removed first: text there is inert).
  expect(page.replace(/="[^"]*"/g, '=""')).not.toMatch(/<[^>]*\son[a-z]+=/i);
});

test('the token is required on every request: pages, JSON, assets and the stream', async () => {
  const guarded = await serveViewer({ pool: db.pool, port: 0, token: TOKEN, live: false, log: () => undefined });
  try {
    const url = guarded.url.replace(/\/$/, '');
    for (const p of ['/', '/api/entries', '/entries/1', '/assets/viewer.css', '/assets/viewer.js', '/api/stream', '/objects/users/1']) {
      expect([p, (await get(`${url}${p}`)).status]).toEqual([p, 401]);
      expect([p, (await get(`${url}${p}?token=wrong-token-0123456789`)).status]).toEqual([p, 401]);
      expect([p, (await get(`${url}${p}`, { headers: { cookie: 'auditlog_viewer=forged' } })).status]).toEqual([p, 401]);
      expect([p, (await get(`${url}${p}`, { headers: { authorization: `Bearer ${TOKEN}x` } })).status]).toEqual([p, 401]);
    }
    // Scripts: a bearer token.
    expect((await get(`${url}/api/entries`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    // Browsers: ?token= once, then an HttpOnly SameSite=Strict cookie; the token leaves the URL.
    const first = await get(`${url}/?actor=alice&token=${TOKEN}`);
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/?actor=alice');
    const cookie = first.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(TOKEN);
    const session = cookie.split(';')[0]!;
    for (const p of ['/?actor=alice', '/assets/viewer.js', '/api/entries/1']) {
      expect([p, (await get(`${url}${p}`, { headers: { cookie: session } })).status]).toEqual([p, 200]);
    }
    const stream = await get(`${url}/api/stream`, { headers: { cookie: session } });
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await stream.body?.cancel();
  } finally {
    await guarded.close();
  }
});

test('a bind that is not loopback refuses to start without a token', async () => {
  expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost', '[::1]'].every(isLoopback)).toBe(true);
  expect(['0.0.0.0', '::', '192.168.1.2', '10.0.0.1', 'example.com', '::ffff:10.0.0.1'].some(isLoopback)).toBe(false);
  await expect(serveViewer({ pool: db.pool, host: '0.0.0.0', port: 0 })).rejects.toMatchObject({ code: 'UNSAFE_BIND' });
  const run = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile('node', [BIN, 'serve', '--host', '0.0.0.0', '--port', '0', '--database-url', db.url],
      { env: { ...process.env, AUDITLOG_VIEWER_TOKEN: '' }, timeout: 20_000 },
      (err, _stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, stderr }));
  });
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/refusing to serve the audit log on 0\.0\.0\.0 without a token/);
});

test('auditlog serve answers on loopback, takes the token from AUDITLOG_VIEWER_TOKEN, and stops on SIGTERM', async () => {
  const child = spawn('node', [BIN, 'serve', '--port', '0', '--database-url', db.url], { env: { ...process.env, AUDITLOG_VIEWER_TOKEN: TOKEN } });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`serve exited ${code}`)));
    });
    expect((await get(url)).status).toBe(401);
    expect((await get(`${url}api/entries`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  } finally {
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }
});

async function listen(handler: (req: any, res: any) => void): Promise<{ server: Server; url: string }> {
  const s = createServer(handler);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { server: s, url: `http://127.0.0.1:${(s.address() as AddressInfo).port}` };
}

test('mounted under Express at a path, behind the app\'s own middleware, links keep the mount path', async () => {
  const viewer = auditViewer({ pool: db.pool, live: false });
  const app = express();
  let checked = 0;
  app.use('/admin/audit', (_req, _res, next) => { checked++; next(); }, viewer);
  app.get('/other', (_req, res) => { res.send('app route'); });
  const { server: s, url } = await listen(app);
  try {
    const page = await (await get(`${url}/admin/audit/?actor=alice`)).text();
    expect(page).toContain('href="/admin/audit/assets/viewer.css"');
    expect(page).toMatch(/href="\/admin\/audit\/entries\/\d+"/);
    expect(page).toContain('href="/admin/audit/?actor=alice"');
    expect((await get(`${url}/admin/audit/assets/viewer.js`)).status).toBe(200);
    expect((await json(`${url}/admin/audit/api/entries?actor=bob`)).entries.length).toBeGreaterThan(0);
    expect((await get(`${url}/admin/audit/api/entries`, { method: 'POST' })).status).toBe(405);
    expect(await (await get(`${url}/other`)).text()).toBe('app route');
    expect(checked).toBeGreaterThanOrEqual(4);
  } finally {
    await new Promise((resolve) => s.close(resolve));
    await viewer.close();
  }
});

test('the Fastify route recipe from docs/viewer.md works', async () => {
  const viewer: AuditViewer = auditViewer({ pool: db.pool, live: false });
  const app = Fastify();
  // docs/viewer.md, "Fastify"
  const mount = '/admin/audit';
  app.all(`${mount}/*`, (request, reply) => {
    reply.hijack();
    const req = request.raw as typeof request.raw & { baseUrl?: string };
    req.baseUrl = mount;
    req.url = req.url!.slice(mount.length) || '/';
    viewer(req, reply.raw);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const page = await (await get(`${url}/admin/audit/?table=users`)).text();
    expect(page).toMatch(/href="\/admin\/audit\/entries\/\d+"/);
    expect((await json(`${url}/admin/audit/api/entries?table=users`)).entries.length).toBeGreaterThan(0);
    expect((await get(`${url}/admin/audit/api/entries`, { method: 'DELETE' })).status).toBe(405);
  } finally {
    await app.close();
    await viewer.close();
  }
});

test('the live stream sends new matching entries as they commit, and leaves no cursor in the database', async () => {
  const after = (await db.entries()).at(-1)!.id;
  const res = await fetch(`${base}/api/stream?actor=carol&after=${after}`);
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  let text = '';
  const until = async (pattern: RegExp) => {
    const deadline = Date.now() + 15_000;
    while (!pattern.test(text)) {
      if (Date.now() > deadline) throw new Error(`no ${pattern} in ${text}`);
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      text += Buffer.from(value).toString();
    }
  };
  await withAuditSession(db.pool, { actor: 'dave' }, (c) => c.query(`INSERT INTO users (email) VALUES ('dave@x')`));
  await withAuditSession(db.pool, { actor: 'carol' }, (c) => c.query(`INSERT INTO users (email) VALUES ('carol@x')`));
  const started = Date.now();
  await until(/event: entry\ndata: .*carol@x/);
  // Woken by the subscription, not by the 5-second fallback look.
  expect(Date.now() - started).toBeLessThan(4000);
  expect(text).not.toContain('dave@x');
  const [row] = await db.entries(`actor = 'carol'`);
  expect(text).toContain(`id: ${row!.id}\n`);
  await reader.cancel();
  expect(await db.sql('SELECT count(*)::int AS n FROM auditlog.subscriber_cursor')).toEqual([{ n: 0 }]);
});
