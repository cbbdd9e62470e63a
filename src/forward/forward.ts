// forwardToNats(): a durable subscriber (src/events) whose hook publishes each batch to NATS
// JetStream and returns only once every message is acknowledged, so the cursor moves past an
// entry only after the broker holds it. A crash between the two republishes the batch with the
// same message ids, and JetStream drops the copies inside its duplicate window.
import { EventEmitter } from 'node:events';
import { Client } from 'pg';
import { AuditLogError } from '../errors';
import { subscribe } from '../events';
import type { ForwardedBatch, Forwarder, ForwardToNatsOptions } from '../interfaces';
import { connectNats, duplicateWindowMs, ensureStream, formatDuration, loadNatsClient, type NatsConnection } from './nats';
import { publishBatch } from './publish';
import { escapeSubjectToken, publishedSubjects } from './subject';
import { parseQualifiedName } from '../ident';

const DEFAULTS = { stream: 'AUDITLOG', name: 'forwarder', schema: 'auditlog', duplicateWindowMs: 10 * 60_000, publishTimeoutMs: 10_000 };

/** JetStream stream names: no whitespace, ".", "*", ">", path separators. */
const STREAM_NAME = /^[^\s.*>/\\]+$/;

function validate(o: ForwardToNatsOptions) {
  const problems: string[] = [];
  const opts = (o ?? {}) as Partial<ForwardToNatsOptions>;
  if (typeof opts.connectionString !== 'string' || opts.connectionString === '') problems.push('connectionString must be a non-empty string');
  const servers = opts.servers === undefined ? [] : [opts.servers].flat();
  if (servers.length === 0 || servers.some((s) => typeof s !== 'string' || s === '')) problems.push('servers must be a NATS URL or a non-empty array of them, e.g. "nats://127.0.0.1:4222"');
  const stream = opts.stream ?? DEFAULTS.stream;
  if (typeof stream !== 'string' || !STREAM_NAME.test(stream)) problems.push(`stream ${JSON.stringify(stream)} is not a JetStream stream name (no spaces, ".", "*", ">", "/" or "\\")`);
  const name = opts.name ?? DEFAULTS.name;
  if (typeof name !== 'string' || name === '' || name.includes('\0')) problems.push('name must be a non-empty string');
  const source = opts.source;
  if (source !== undefined && (typeof source !== 'string' || !/^[\x21-\x7e]+$/.test(source))) problems.push('source must be printable ASCII without spaces');
  const positive = (key: string, value: unknown, fallback: number) => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) problems.push(`${key} must be a positive integer, got ${String(value)}`);
    return value as number;
  };
  const settings = {
    servers: servers as string[], stream, name, source,
    schema: opts.schema ?? DEFAULTS.schema,
    duplicateWindowMs: positive('duplicateWindowMs', opts.duplicateWindowMs, DEFAULTS.duplicateWindowMs),
    publishTimeoutMs: positive('publishTimeoutMs', opts.publishTimeoutMs, DEFAULTS.publishTimeoutMs),
    log: opts.log ?? ((line: string) => console.warn(`pg-auditlog: ${line}`)),
  };
  if (problems.length > 0) throw new AuditLogError('OPTIONS_INVALID', `invalid forwardToNats() options: ${problems.join('; ')}`, { problems });
  return settings;
}

/** "<system identifier>.<database oid>.<schema token>": one database's entries, whatever its name. */
async function databaseSource(connectionString: string, schema: string): Promise<string> {
  const client = new Client({ connectionString, application_name: 'pg-auditlog forward' });
  try {
    await client.connect();
    const { rows } = await client.query<{ sysid: string; dboid: string }>(
      `SELECT (SELECT s.system_identifier FROM pg_catalog.pg_control_system() s)::text AS sysid, d.oid::text AS dboid
       FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()`);
    return `${rows[0]!.sysid}.${rows[0]!.dboid}.${escapeSubjectToken(schema)}`;
  } catch (err) {
    throw new AuditLogError('SUBSCRIBER_FAILED', `could not read the database's identity: ${(err as Error).message}; check the connection string, or pass source`, { cause: err });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Watches the NATS connection and reports losing and regaining it. */
async function watchStatus(nc: NatsConnection, log: (line: string) => void): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === 'disconnect') log(`lost the NATS connection to ${s.server}; reconnecting forever (publishes wait, the cursor stays)`);
    else if (s.type === 'reconnect') log(`NATS connection restored (${s.server})`);
    else if (s.type === 'error') log(`NATS error: ${s.error.message}`);
  }
}

/**
 * Forwards every committed entry to JetStream stream `stream` (created when missing) on subject
 * auditlog.<schema>.<table>.<action>, from the durable cursor `name`. Resolves once connected
 * to both ends and forwarding; throws OPTIONS_INVALID, NATS_CLIENT_MISSING, BROKER_UNREACHABLE,
 * STREAM_INVALID or the subscriber's start errors.
 */
export async function forwardToNats(options: ForwardToNatsOptions): Promise<Forwarder> {
  const s = validate(options);
  const label = `forwarder "${s.name}"`;
  const log = (line: string) => s.log(`${label}: ${line}`);
  const client = loadNatsClient();
  const source = s.source ?? (await databaseSource(options.connectionString, s.schema));

  const nc = await connectNats(client, {
    servers: s.servers, name: `pg-auditlog forward ${s.name}`, maxReconnectAttempts: -1, reconnectTimeWait: 1000,
  });
  const emitter = new EventEmitter();
  const emitError = (err: AuditLogError) => {
    if (emitter.listenerCount('error') > 0) emitter.emit('error', err);
    else log(err.message);
  };
  let subscription;
  try {
    const jsm = await client.jetstream.jetstreamManager(nc, { timeout: s.publishTimeoutMs }).catch((err: Error) => {
      throw new AuditLogError('STREAM_INVALID', `the NATS server at ${s.servers.join(', ')} offers no JetStream: ${err.message} (start nats-server with -js)`, { cause: err });
    });
    const tables = options.tables?.map(parseQualifiedName);
    const published = publishedSubjects(tables && tables.every((t) => t !== null) ? tables as Array<{ schema: string; name: string }> : null);
    const info = await ensureStream(client, jsm, s.stream, s.duplicateWindowMs, published, log);
    const window = duplicateWindowMs(info);
    log(`publishing into stream "${s.stream}" (duplicate window ${formatDuration(window)}), message ids "${source}:<entry id>"`);
    void watchStatus(nc, log);
    const js = client.jetstream.jetstream(nc, { timeout: s.publishTimeoutMs });
    const ctx = {
      js, makeHeaders: client.transport.headers, stream: s.stream, source, timeoutMs: s.publishTimeoutMs, maxPayload: () => nc.info?.max_payload ?? 0,
    };
    let last: ForwardedBatch | undefined;
    subscription = await subscribe({
      connectionString: options.connectionString, name: s.name, schema: s.schema, startFrom: options.startFrom,
      tables: options.tables, actions: options.actions, actors: options.actors, batchSize: options.batchSize, retry: options.retry,
      log: (line) => s.log(line),
    }, async (entries) => {
      last = await publishBatch(ctx, entries);
    });
    subscription.on('error', emitError);
    // "delivered" comes after the cursor is stored: only then is a batch forwarded.
    subscription.on('delivered', () => {
      if (last) emitter.emit('forwarded', last);
      last = undefined;
    });
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw err;
  }

  const sub = subscription;
  let closed: Promise<void> | undefined;
  const forwarder: Forwarder = {
    name: s.name,
    stream: s.stream,
    source,
    on(event: 'error' | 'forwarded', fn: (...args: any[]) => void) {
      emitter.on(event, fn);
      return forwarder;
    },
    off(event, fn) {
      emitter.off(event, fn);
      return forwarder;
    },
    close() {
      closed ??= (async () => {
        await sub.close(); // waits for the batch in flight: acknowledged, then its cursor stored
        await nc.drain().catch(() => nc.close());
      })();
      return closed;
    },
  };
  return forwarder;
}
