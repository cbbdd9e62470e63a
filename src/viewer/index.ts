// auditViewer(): the read-only audit log viewer as a Connect-style handler (node:http,
// Express, a Fastify route). Pages, the JSON API, assets and the live stream all pass the
// same checks: GET/HEAD only, the token, a strict Content-Security-Policy, READ ONLY reads.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientBase } from 'pg';
import { AuditLogError } from '../errors';
import { describeEntries, describeEntry, getEntry, history, searchHistory, stateAt } from '../history';
import type { AuditViewer, DisplayEntry, HistoryQuery, LogEntry, ViewerOptions } from '../interfaces';
import { assets } from './assets';
import { tokenCheck } from './auth';
import { readOnly } from './db';
import { type Html } from './html';
import { toJson } from './json';
import { liveHub } from './live';
import {
  entryPage, entryRow, FILTER_KEYS, href, listPage, messagePage, objectPage, type Filters,
} from './pages';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

const DEFAULT_PAGE_SIZE = 50;

type Next = (err?: unknown) => void;
type Req = IncomingMessage & { baseUrl?: string; originalUrl?: string };

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

function securityHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}

/** When each request arrived, for its Server-Timing header. */
const arrived = new WeakMap<IncomingMessage, number>();

function send(req: Req, res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.statusCode = status;
  const start = arrived.get(req);
  if (start !== undefined) res.setHeader('Server-Timing', `app;dur=${(performance.now() - start).toFixed(1)}`);
  res.setHeader('Content-Type', type);
  if (!res.hasHeader('Cache-Control')) res.setHeader('Cache-Control', 'no-store');
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.setHeader('Content-Length', String(buf.length));
  res.end(req.method === 'HEAD' ? undefined : buf);
}

const sendHtml = (req: Req, res: ServerResponse, status: number, page: Html) => send(req, res, status, 'text/html; charset=utf-8', page.text);
const sendJson = (req: Req, res: ServerResponse, status: number, value: unknown) =>
  send(req, res, status, 'application/json; charset=utf-8', `${toJson(value, 2)}\n`);

function one(query: URLSearchParams, key: string): string | undefined {
  const v = query.get(key);
  return v === null || v.trim() === '' ? undefined : v.trim();
}

function filtersOf(query: URLSearchParams): Filters {
  const f: Filters = {};
  for (const k of FILTER_KEYS) {
    const v = one(query, k);
    if (v !== undefined) f[k] = v;
  }
  return f;
}

/** URL filters → history query (the history functions validate the values). */
function historyQuery(schema: string, f: Filters, query: URLSearchParams, pageSize: number): HistoryQuery {
  const q: HistoryQuery = { schema, limit: pageSize };
  if (f.table) q.table = f.table;
  if (f.action) q.actions = f.action.split(',').map((a) => a.trim()).filter((a) => a !== '');
  if (f.actor) q.actor = f.actor;
  if (f.cid) q.cid = f.cid;
  if (f.txid) q.txid = f.txid;
  if (f.since) q.since = f.since;
  if (f.until) q.until = f.until;
  const cursor = one(query, 'cursor');
  if (cursor) q.cursor = cursor;
  const limit = one(query, 'limit');
  if (limit !== undefined) q.limit = /^\d{1,4}$/.test(limit) ? Number(limit) : NaN;
  return q;
}

/**
 * Entries with display names. A role that may read the log but not the capture config
 * (the app role of roles.app) still gets its entries: column names, masks by their marker.
 */
async function describe(db: ClientBase, entries: LogEntry[], schema: string): Promise<DisplayEntry[]> {
  if (entries.length === 0) return [];
  await db.query('SAVEPOINT auditlog_describe');
  try {
    const out = await describeEntries(db, entries, { schema });
    await db.query('RELEASE SAVEPOINT auditlog_describe');
    return out;
  } catch (err) {
    if ((err as { code?: string }).code !== '42501') throw err;
    await db.query('ROLLBACK TO SAVEPOINT auditlog_describe');
    return entries.map((e) => describeEntry(e));
  }
}

function decodeSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new HttpError(400, 'INVALID_ARGUMENT', `${JSON.stringify(text)} is not a valid URL path segment`);
  }
}

export function auditViewer(options: ViewerOptions): AuditViewer {
  if (!options || typeof options.pool?.connect !== 'function') {
    throw new AuditLogError('OPTIONS_INVALID', 'auditViewer() needs { pool }: a pg.Pool the viewer reads the log with');
  }
  if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length < 16)) {
    throw new AuditLogError('OPTIONS_INVALID', 'the viewer token must be a string of at least 16 characters (e.g. openssl rand -hex 24)');
  }
  const { pool } = options;
  const schema = options.schema ?? 'auditlog';
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const log = options.log ?? ((line: string) => console.warn(`pg-auditlog viewer: ${line}`));
  const auth = tokenCheck(options.token);
  const statementTimeoutMs = options.statementTimeoutMs ?? 10_000;
  const liveConnection = options.live === false
    ? undefined
    : options.live?.connectionString ?? (pool as unknown as { options?: { connectionString?: string } }).options?.connectionString;
  const live = liveHub({ connectionString: liveConnection, schema, pollIntervalMs: options.live ? options.live.pollIntervalMs ?? 1000 : 1000, log });
  const streams = new Set<ServerResponse>();

  async function read<T>(req: Req, fn: (db: ClientBase) => Promise<T>): Promise<T> {
    const tenant = options.tenant ? await options.tenant(req) : undefined;
    return readOnly(pool, { tenant, statementTimeoutMs }, fn);
  }

  async function listData(req: Req, query: URLSearchParams) {
    const filters = filtersOf(query);
    const hq = historyQuery(schema, filters, query, pageSize);
    return read(req, async (db) => {
      const page = filters.q !== undefined ? await searchHistory(db, { ...hq, text: filters.q }) : { ...(await history(db, hq)), partial: false, scanned: undefined };
      return { filters, ...page, entries: await describe(db, page.entries, schema) };
    });
  }

  async function objectData(req: Req, table: string, pk: string, query: URLSearchParams) {
    const at = one(query, 'at');
    const cursor = one(query, 'cursor');
    return read(req, async (db) => {
      const page = await history(db, { schema, table, objectPk: pk, limit: pageSize, ...(cursor ? { cursor } : {}) });
      const state = await stateAt(db, table, pk, at ?? new Date(), { schema });
      const entries = await describe(db, page.entries, schema);
      return { at, state, entries, nextCursor: page.nextCursor };
    });
  }

  /** The live stream: new entries matching the page's filters, as rendered rows. */
  async function stream(req: Req, res: ServerResponse, base: string, query: URLSearchParams): Promise<void> {
    const filters = filtersOf(query);
    const pk = one(query, 'pk');
    if (filters.until) throw new HttpError(400, 'INVALID_ARGUMENT', 'a view that ends at "until" gets no live updates');
    if (pk !== undefined && !filters.table) throw new HttpError(400, 'INVALID_ARGUMENT', 'pk needs table');
    const base0: HistoryQuery = historyQuery(schema, { ...filters, q: undefined }, new URLSearchParams(), 100);
    if (pk !== undefined) base0.objectPk = pk;
    const needle = filters.q?.toLowerCase();
    let last = (req.headers['last-event-id'] as string | undefined) ?? one(query, 'after');
    if (last !== undefined && !/^\d{1,19}$/.test(last)) throw new HttpError(400, 'INVALID_ARGUMENT', 'after must be an entry id');
    if (last === undefined) {
      last = await read(req, async (db) => (await history(db, { ...base0, limit: 1 })).entries[0]?.id ?? '0');
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.write('retry: 2000\n\n');
    streams.add(res);
    let running = false;
    let again = false;
    let ended = false;
    const pump = async () => {
      if (running) { again = true; return; }
      running = true;
      try {
        do {
          again = false;
          const page = await read(req, async (db) => {
            const p = await history(db, { ...base0, order: 'oldest', cursor: last });
            return { ...p, entries: await describe(db, p.entries, schema) };
          });
          for (const e of page.entries) {
            last = e.id;
            if (needle && !`${e.object_repr ?? ''}\n${e.object_pk ?? ''}`.toLowerCase().includes(needle)) continue;
            if (!ended) res.write(`id: ${e.id}\nevent: entry\ndata: ${toJson({ id: e.id, html: entryRow(base, e).text })}\n\n`);
          }
          if (page.nextCursor !== null) again = true;
        } while (again && !ended);
      } catch (err) {
        log(`live stream: ${(err as Error).message}`);
      } finally {
        running = false;
      }
    };
    const leave = live.join(() => void pump());
    // Heartbeat; also a fallback for entries the shared subscriber cannot see (another tenant).
    const beat = setInterval(() => { if (!ended) { res.write(': ping\n\n'); void pump(); } }, 5_000);
    const end = () => {
      if (ended) return;
      ended = true;
      clearInterval(beat);
      leave();
      streams.delete(res);
    };
    req.on('close', end);
    res.on('close', end);
    void pump();
  }

  function streamUrl(base: string, filters: Filters, newest: DisplayEntry | undefined, extra: Record<string, string> = {}): string | undefined {
    if (filters.until) return undefined;
    return href(base, '/api/stream', { ...filters, ...extra, after: newest?.id ?? '0' });
  }

  async function route(req: Req, res: ServerResponse, base: string, path: string, query: URLSearchParams): Promise<boolean> {
    const api = path.startsWith('/api/');
    if (path === '/assets/viewer.css' || path === '/assets/viewer.js') {
      const asset = assets().get(path.slice('/assets/'.length))!;
      res.setHeader('Cache-Control', 'private, no-cache');
      if (req.headers['if-none-match'] === asset.etag) {
        res.statusCode = 304;
        res.setHeader('ETag', asset.etag);
        res.end();
        return true;
      }
      send(req, res, 200, asset.type, asset.body, { ETag: asset.etag });
      return true;
    }
    if (path === '/' || path === '' || path === '/api/entries') {
      const data = await listData(req, query);
      if (api) {
        sendJson(req, res, 200, { entries: data.entries, nextCursor: data.nextCursor, ...(data.scanned === undefined ? {} : { scanned: data.scanned, partial: data.partial }) });
        return true;
      }
      const first = one(query, 'cursor') === undefined;
      sendHtml(req, res, 200, listPage({
        base, filters: data.filters, entries: data.entries, nextCursor: data.nextCursor, first,
        partial: data.partial ? { scanned: data.scanned! } : undefined,
        stream: first ? streamUrl(base, data.filters, data.entries[0]) : undefined,
      }));
      return true;
    }
    let m = /^\/(api\/)?entries\/([^/]+)$/.exec(path);
    if (m) {
      const id = decodeSegment(m[2]!);
      if (!/^\d{1,19}$/.test(id)) throw new HttpError(404, 'NOT_FOUND', `no log entry ${JSON.stringify(id)}: entry ids are positive integers`);
      const entry = await read(req, async (db) => {
        const e = await getEntry(db, id, { schema });
        return e === null ? null : (await describe(db, [e], schema))[0]!;
      });
      if (entry === null) throw new HttpError(404, 'NOT_FOUND', `log entry ${id} does not exist (or this viewer's database role may not see it)`);
      if (api) sendJson(req, res, 200, entry);
      else sendHtml(req, res, 200, entryPage(base, entry));
      return true;
    }
    m = /^\/(api\/)?objects\/([^/]+)\/([^/]+)$/.exec(path);
    if (m) {
      const [table, pk] = [decodeSegment(m[2]!), decodeSegment(m[3]!)];
      const data = await objectData(req, table, pk, query);
      if (api) {
        sendJson(req, res, 200, { table, objectPk: pk, at: data.at ?? null, state: data.state, entries: data.entries, nextCursor: data.nextCursor });
        return true;
      }
      const labels = new Map<string, string>();
      for (const e of data.entries) for (const f of e.fields) labels.set(f.field, f.label);
      const first = one(query, 'cursor') === undefined;
      sendHtml(req, res, 200, objectPage({
        base, table, pk, at: data.at, state: data.state, labels, entries: data.entries, nextCursor: data.nextCursor, first,
        stream: first && data.at === undefined ? streamUrl(base, { table }, data.entries[0], { pk }) : undefined,
      }));
      return true;
    }
    if (path === '/api/stream') {
      await stream(req, res, base, query);
      return true;
    }
    return false;
  }

  function fail(req: Req, res: ServerResponse, base: string, api: boolean, err: unknown): void {
    let status = 500;
    let code = 'INTERNAL';
    let message = 'the viewer could not read the log; see the server log';
    const pgCode = (err as { code?: unknown }).code;
    if (err instanceof HttpError) [status, code, message] = [err.status, err.code, err.message];
    else if (err instanceof AuditLogError) {
      status = err.code === 'NOT_FOUND' ? 404 : err.code === 'INVALID_ARGUMENT' ? 400 : 500;
      [code, message] = [err.code, err.message];
    } else if (pgCode === '42501') {
      [status, code, message] = [403, 'INSUFFICIENT_PRIVILEGE',
        `this viewer's database role may not read this part of the audit log (${(err as Error).message}): with roles.appReadsLog false it reads nothing; use a role that may`];
    } else if (pgCode === '42P01') {
      [status, code, message] = [500, 'NOT_INSTALLED', `audit schema "${schema}" has no log: run auditlog install, or pass the schema option`];
    } else if (pgCode === '57014') {
      [status, code, message] = [503, 'TIMEOUT', 'the query took longer than the viewer allows; narrow the filters'];
    }
    if (status === 500) log(`${req.method} ${req.url}: ${(err as Error)?.stack ?? String(err)}`);
    if (res.headersSent) { res.end(); return; }
    if (api) sendJson(req, res, status, { error: { code, message } });
    else sendHtml(req, res, status, messagePage(base, status === 404 ? 'Not found' : status === 400 ? 'Bad request' : 'Error', message));
  }

  const handler = (req: IncomingMessage, res: ServerResponse, next?: Next): void => {
    const r = req as Req;
    arrived.set(req, performance.now());
    const base = (r.baseUrl ?? '').replace(/\/+$/, '');
    const url = new URL(r.url ?? '/', 'http://viewer.invalid');
    const path = url.pathname;
    const api = path.startsWith('/api/');
    securityHeaders(res);
    if (r.method !== 'GET' && r.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      if (api) sendJson(r, res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'the audit log viewer is read-only: only GET and HEAD' } });
      else sendHtml(r, res, 405, messagePage(base, 'Read-only', 'The audit log viewer is read-only: only GET and HEAD requests are answered.'));
      return;
    }
    const secure = Boolean((r.socket as { encrypted?: boolean }).encrypted) || r.headers['x-forwarded-proto'] === 'https';
    const authResult = auth.check(r, url.searchParams, `${base}/`, secure);
    if (!authResult.ok) {
      const message = 'This audit log viewer needs its token: open it once as …/?token=<token>, or send Authorization: Bearer <token>.';
      const extra = { 'WWW-Authenticate': 'Bearer realm="pg-auditlog viewer"' };
      if (api || path.startsWith('/assets/')) send(r, res, 401, 'application/json; charset=utf-8', `${toJson({ error: { code: 'UNAUTHORIZED', message } })}\n`, extra);
      else send(r, res, 401, 'text/html; charset=utf-8', messagePage(base, 'Token required', message).text, extra);
      return;
    }
    if (authResult.setCookie) {
      res.setHeader('Set-Cookie', authResult.setCookie);
      if (!api && !path.startsWith('/assets/')) {
        url.searchParams.delete('token');
        const rest = url.searchParams.toString();
        send(r, res, 303, 'text/plain; charset=utf-8', 'See Other\n', { Location: `${base}${path}${rest === '' ? '' : `?${rest}`}` });
        return;
      }
    }
    route(r, res, base, path, url.searchParams).then(
      (handled) => {
        if (handled) return;
        if (next) next();
        else fail(r, res, base, api, new HttpError(404, 'NOT_FOUND', `nothing at ${path}`));
      },
      (err: unknown) => fail(r, res, base, api, err),
    );
  };

  return Object.assign(handler, {
    async close() {
      for (const res of streams) res.end();
      streams.clear();
      await live.close();
    },
  });
}
