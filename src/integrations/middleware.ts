// HTTP middleware: one audit context per request (actor, correlation id, client IP, method and
// route), made ambient with AsyncLocalStorage.run around the rest of the request, so auditPool()
// and withAuditSession() attribute every write the request makes.
import { AsyncResource } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { AuditLogError } from '../errors';
import type { AuditContext, AuditContextOptions, FastifyAuditContextOptions } from '../interfaces';
import { ambient, extendContext } from '../session/context';
import { contextToSettings } from '../session';
import { withTraceId } from './otel';

const DEFAULT_HEADER = 'x-correlation-id';
/** Printable, header-safe, no spaces or quotes; long enough for a UUID, a W3C trace id or a ULID. */
const CORRELATION_ID = /^[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}$/;

/** Express / Connect request, as far as this module reads it. */
interface RequestLike extends IncomingMessage {
  route?: { path?: unknown };
  baseUrl?: string;
}

interface Prepared<Req> {
  header: string;
  build(req: Req, raw: IncomingMessage, route: () => string | undefined): Promise<{ context: AuditContext; cid: string }>;
}

function prepare<Req>(options: AuditContextOptions<Req>, where: string): Prepared<Req> {
  const problems: string[] = [];
  if (options.actor !== undefined && typeof options.actor !== 'function') problems.push('actor must be a function (req) => actor');
  if (options.tenant !== undefined && typeof options.tenant !== 'function') problems.push('tenant must be a function (req) => tenant');
  if (options.data !== undefined && typeof options.data !== 'function') problems.push('data must be a function (req) => object');
  const header = (options.correlationIdHeader ?? DEFAULT_HEADER).toLowerCase();
  if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(header)) problems.push(`correlationIdHeader "${options.correlationIdHeader}" is not a header name`);
  const trusted = trustedProxies(options.trustedProxies, problems);
  if (problems.length > 0) {
    throw new AuditLogError('OPTIONS_INVALID', `${where}: invalid options: ${problems.join('; ')}`, { problems });
  }
  const generate = options.generateCorrelationId ?? randomUUID;
  const text = (value: unknown, what: string): string | undefined => {
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'bigint') return String(value);
    throw new AuditLogError('CONTEXT_INVALID', `${where}: the ${what} getter returned a ${typeof value}; return a string or number`);
  };
  return {
    header,
    async build(req, raw, route) {
      const incoming = raw.headers[header];
      const given = Array.isArray(incoming) ? incoming[0] : incoming;
      const cid = given !== undefined && CORRELATION_ID.test(given) ? given : generate();
      const data: Record<string, unknown> = { method: raw.method };
      // The route is known only once the router has matched it (Express): read it when a query runs.
      Object.defineProperty(data, 'route', { enumerable: true, get: route });
      if (options.data) Object.assign(data, await options.data(req));
      const context: AuditContext = { cid, data };
      const actor = text(options.actor ? await options.actor(req) : undefined, 'actor');
      if (actor !== undefined) context.actor = actor;
      const tenant = text(options.tenant ? await options.tenant(req) : undefined, 'tenant');
      if (tenant !== undefined) context.tenant = tenant;
      const remoteAddr = clientAddress(raw, trusted);
      if (remoteAddr !== undefined) context.remoteAddr = remoteAddr;
      const traced = withTraceId(context);
      contextToSettings(traced); // fails here, with the request, rather than at its first query
      return { context: traced, cid };
    },
  };
}

function trustedProxies(value: AuditContextOptions<unknown>['trustedProxies'], problems: string[]): (addr: string) => boolean {
  if (value === undefined) return () => false;
  if (typeof value === 'function') return value;
  if (!Array.isArray(value)) {
    problems.push('trustedProxies must be a list of addresses or CIDR ranges, or a function (addr) => boolean');
    return () => false;
  }
  const list = new BlockList();
  for (const entry of value) {
    const [addr, prefix, ...rest] = String(entry).split('/');
    const family = addr ? isIP(addr) : 0;
    const bits = prefix === undefined ? undefined : Number(prefix);
    if (family === 0 || rest.length > 0 || (bits !== undefined && (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)))) {
      problems.push(`trustedProxies: "${entry}" is not an IP address or CIDR range`);
      continue;
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr!, type);
    else list.addSubnet(addr!, bits, type);
  }
  return (a) => {
    const family = isIP(a);
    return family !== 0 && list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/** `::ffff:10.0.0.1` → `10.0.0.1`; brackets and zone ids removed. */
function normalise(addr: string): string {
  let a = addr.trim();
  if (a.startsWith('[') && a.includes(']')) a = a.slice(1, a.indexOf(']'));
  const zone = a.indexOf('%');
  if (zone !== -1) a = a.slice(0, zone);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return mapped ? mapped[1]! : a;
}

/**
 * The socket's peer; when that peer is a trusted proxy, X-Forwarded-For is read from the right,
 * skipping trusted proxies, and the first address that is not one is the client.
 */
function clientAddress(raw: IncomingMessage, trusted: (addr: string) => boolean): string | undefined {
  const peer = raw.socket?.remoteAddress;
  if (!peer) return undefined;
  let client = normalise(peer);
  if (!trusted(client)) return client;
  const header = raw.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : header ?? '').split(',').map(normalise).filter((h) => h !== '');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (isIP(hop) === 0) break; // a malformed hop: stop at the last address we could trust
    client = hop;
    if (!trusted(hop)) break;
  }
  return client;
}

function expressRoute(req: RequestLike): string | undefined {
  const path = req.route?.path;
  if (typeof path !== 'string') return undefined;
  return `${req.baseUrl ?? ''}${path}`;
}

/**
 * Express / Connect middleware: the rest of the request runs with its audit context ambient.
 * Register it after the middleware that identifies the user (the actor getter reads it).
 */
export function auditContextMiddleware<Req extends IncomingMessage = IncomingMessage>(
  options: AuditContextOptions<Req> = {},
): (req: Req, res: ServerResponse, next: (err?: unknown) => void) => void {
  const prepared = prepare(options, 'auditContextMiddleware');
  const echo = options.echoCorrelationId !== false;
  return (req, res, next) => {
    prepared.build(req, req, () => expressRoute(req as RequestLike)).then(({ context, cid }) => {
      if (echo && !res.headersSent) res.setHeader(prepared.header, cid);
      const outer = ambient.getStore();
      ambient.run({ ...outer, context: extendContext(outer?.context, context) }, () => next());
    }, (err) => next(err));
  };
}

/** Fastify's request and reply, as far as the plugin uses them. */
interface FastifyRequestLike {
  raw: IncomingMessage;
  routeOptions?: { url?: string };
  [key: symbol]: unknown;
}
interface FastifyReplyLike {
  header(name: string, value: string): unknown;
  sent?: boolean;
}
type HookDone = (err?: Error) => void;
interface FastifyLike {
  addHook(name: string, hook: (req: FastifyRequestLike, reply: FastifyReplyLike, done: HookDone) => void): unknown;
}

const RESOURCE = Symbol('pg-auditlog.asyncResource');

/**
 * Fastify plugin: `app.register(fastifyAuditContext, { actor: (req) => req.user?.id })`.
 * Skips Fastify's encapsulation (as fastify-plugin does), so its hooks reach every route.
 * The context is made in the `hook` chosen (default onRequest) and re-entered in preValidation,
 * because body parsing runs outside the request's async context.
 */
export function fastifyAuditContext(
  // Typed loosely so that a FastifyInstance of any Fastify version is accepted by register().
  instance: any, options: FastifyAuditContextOptions, done: (err?: Error) => void,
): void {
  const fastify = instance as FastifyLike;
  let prepared: Prepared<FastifyRequestLike>;
  try {
    prepared = prepare(options as AuditContextOptions<FastifyRequestLike>, 'fastifyAuditContext');
  } catch (err) {
    return done(err as Error);
  }
  const hook = options.hook ?? 'onRequest';
  if (!['onRequest', 'preParsing', 'preValidation', 'preHandler'].includes(hook)) {
    return done(new AuditLogError('OPTIONS_INVALID', `fastifyAuditContext: hook must be onRequest, preParsing, preValidation or preHandler, got "${hook}"`));
  }
  const echo = options.echoCorrelationId !== false;
  fastify.addHook(hook, (req, reply, next) => {
    prepared.build(req, req.raw, () => req.routeOptions?.url).then(({ context, cid }) => {
      if (echo) reply.header(prepared.header, cid);
      const outer = ambient.getStore();
      ambient.run({ ...outer, context: extendContext(outer?.context, context) }, () => {
        req[RESOURCE] = new AsyncResource('pg-auditlog.request');
        next();
      });
    }, (err) => next(err as Error));
  });
  if (hook === 'onRequest' || hook === 'preParsing') {
    fastify.addHook('preValidation', (req, _reply, next) => {
      const resource = req[RESOURCE] as AsyncResource | undefined;
      if (resource) resource.runInAsyncScope(next);
      else next();
    });
  }
  done();
}
// What fastify-plugin sets: no encapsulation, and a name in Fastify's plugin tree.
(fastifyAuditContext as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
(fastifyAuditContext as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = 'pg-auditlog';
