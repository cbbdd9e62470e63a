// The NATS client, loaded only when a forwarder starts (it is an optional peer dependency: the
// rest of pg-auditlog never needs it), and the stream the forwarder publishes into.
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node';
import type { JetStreamClient, JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import { AuditLogError } from '../errors';
import { covers, SUBJECT_FILTER } from './subject';

type Transport = typeof import('@nats-io/transport-node');
type JetStream = typeof import('@nats-io/jetstream');

export interface NatsClient {
  transport: Transport;
  jetstream: JetStream;
}

const PACKAGES = ['@nats-io/transport-node', '@nats-io/jetstream'] as const;

/** The two client packages; NATS_CLIENT_MISSING naming the install command when absent. */
export function loadNatsClient(): NatsClient {
  try {
    // require(), not import(): both packages ship CommonJS, and this file compiles to CommonJS.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return { transport: require(PACKAGES[0]) as Transport, jetstream: require(PACKAGES[1]) as JetStream };
  } catch (err) {
    if ((err as { code?: string }).code !== 'MODULE_NOT_FOUND') throw err;
    throw new AuditLogError('NATS_CLIENT_MISSING',
      `forwarding to NATS needs the NATS client, an optional dependency of pg-auditlog: npm install ${PACKAGES.join(' ')}`, { cause: err });
  }
}

export async function connectNats(client: NatsClient, options: NodeConnectionOptions): Promise<NatsConnection> {
  try {
    return await client.transport.connect(options);
  } catch (err) {
    throw new AuditLogError('BROKER_UNREACHABLE',
      `could not connect to NATS at ${[options.servers].flat().join(', ')}: ${(err as Error).message}; check the URL and that nats-server is running`, { cause: err });
  }
}

/** Nanoseconds, as JetStream stores durations. */
const NS_PER_MS = 1_000_000;

/**
 * The stream's info once it exists and can hold every entry subject: created with subjects
 * "auditlog.>" and the given duplicate window when missing. STREAM_INVALID when an existing
 * stream cannot take our messages (its subjects leave some of `published` out, it is a mirror,
 * or sealed): a forwarder of some tables needs only their subjects covered.
 */
export async function ensureStream(client: NatsClient, jsm: JetStreamManager, stream: string, duplicateWindowMs: number,
  published: string[], log: (line: string) => void): Promise<StreamInfo> {
  const existing = await streamInfo(client, jsm, stream);
  if (existing) return checkStream(existing, published);
  try {
    const created = await jsm.streams.add({ name: stream, subjects: [SUBJECT_FILTER], duplicate_window: duplicateWindowMs * NS_PER_MS });
    log(`created JetStream stream "${stream}" (subjects ${SUBJECT_FILTER}, duplicate window ${formatDuration(duplicateWindowMs)})`);
    return created;
  } catch (err) {
    // Another forwarder may have created it meanwhile.
    const raced = await streamInfo(client, jsm, stream);
    if (raced) return checkStream(raced, published);
    throw new AuditLogError('STREAM_INVALID',
      `could not create JetStream stream "${stream}" with subjects ${SUBJECT_FILTER}: ${(err as Error).message}` +
      ' (another stream may already take these subjects: forward into that one with --stream, or change its subjects)', { cause: err });
  }
}

async function streamInfo(client: NatsClient, jsm: JetStreamManager, stream: string): Promise<StreamInfo | null> {
  try {
    return await jsm.streams.info(stream);
  } catch (err) {
    if (err instanceof client.jetstream.JetStreamApiError && err.code === client.jetstream.JetStreamApiCodes.StreamNotFound) return null;
    const e = err as Error;
    throw new AuditLogError('STREAM_INVALID', `could not read JetStream stream "${stream}": ${e.message}` +
      (e.name === 'JetStreamNotEnabled' || /not enabled/i.test(e.message) ? ' (start nats-server with -js to enable JetStream)' : ''), { cause: err });
  }
}

/** The stream can store every subject in `published` (patterns, see publishedSubjects). */
function checkStream(info: StreamInfo, published: string[]): StreamInfo {
  const c = info.config;
  const problems: string[] = [];
  if (c.mirror) problems.push('it is a mirror, which takes no publishes');
  if (c.sealed) problems.push('it is sealed');
  const missing = published.filter((p) => !(c.subjects ?? []).some((f) => covers(f, p)));
  if (missing.length > 0) {
    problems.push(`its subjects (${(c.subjects ?? []).join(', ') || 'none'}) do not cover ${missing.join(', ')}`);
  }
  if (problems.length > 0) {
    throw new AuditLogError('STREAM_INVALID',
      `JetStream stream "${c.name}" cannot take audit entries: ${problems.join('; ')}. Add "${SUBJECT_FILTER}" to its subjects ` +
      `(nats stream edit ${c.name} --subjects '${SUBJECT_FILTER}'), or name another stream with --stream`, { problems });
  }
  return info;
}

export function duplicateWindowMs(info: StreamInfo): number {
  return Math.round((info.config.duplicate_window ?? 0) / NS_PER_MS);
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

export type { NatsConnection, JetStreamClient, JetStreamManager, StreamInfo };
