// Publishing one batch: pipelined across objects, in order within an object, and resolved only
// when JetStream has acknowledged every message, so the caller may then move its cursor.
import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';
import { AuditLogError } from '../errors';
import type { ForwardedBatch, LogEntry } from '../interfaces';
import { entryBody, entryHeaders, messageId, orderingKey } from './message';
import { entrySubject } from './subject';

export interface PublishContext {
  js: JetStreamClient;
  makeHeaders: () => MsgHdrs;
  stream: string;
  source: string;
  timeoutMs: number;
  /** The server's max_payload in bytes. */
  maxPayload: () => number;
}

const encoder = new TextEncoder();

async function publishOne(ctx: PublishContext, entry: LogEntry): Promise<PubAck> {
  const subject = entrySubject(entry);
  const body = encoder.encode(entryBody(entry));
  const max = ctx.maxPayload();
  if (max > 0 && body.length > max) {
    throw new AuditLogError('PUBLISH_FAILED',
      `entry #${entry.id} (${entry.table_schema}.${entry.table_name}) is ${body.length} bytes as JSON, more than the NATS server's max_payload of ${max} bytes: ` +
      'raise max_payload in the nats-server configuration (the forwarder retries this entry and waits until it fits; it never skips an entry)');
  }
  const headers = ctx.makeHeaders();
  for (const [k, v] of entryHeaders(ctx.source, entry)) headers.set(k, v);
  try {
    return await ctx.js.publish(subject, body, {
      msgID: messageId(ctx.source, entry), headers, timeout: ctx.timeoutMs, expect: { streamName: ctx.stream },
    });
  } catch (err) {
    throw new AuditLogError('PUBLISH_FAILED', `publishing entry #${entry.id} to "${subject}" in stream "${ctx.stream}" failed: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Publishes every entry of the batch (in id order, as the subscriber hands them). Messages of
 * different objects are in flight together; a message waits for the acknowledgement of the
 * previous message of the same object, and an entry without an object waits for everything
 * before it. So a failure never lets a later entry of an object land before an earlier one:
 * the caller retries the whole batch and JetStream drops the copies already stored.
 * Resolves when every message is acknowledged; rejects with the first failure after all
 * publishes of the batch have settled.
 */
export async function publishBatch(ctx: PublishContext, entries: LogEntry[]): Promise<ForwardedBatch> {
  const chains = new Map<string, Promise<PubAck>>();
  const all: Promise<PubAck>[] = [];
  const settle = async (): Promise<PubAck[]> => {
    const results = await Promise.allSettled(all);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return results.map((r) => (r as PromiseFulfilledResult<PubAck>).value);
  };
  for (const entry of entries) {
    const key = orderingKey(entry);
    if (key === null) {
      await settle(); // a barrier: everything before it is stored first
      chains.clear();
      all.push(publishOne(ctx, entry));
      await settle();
      continue;
    }
    const previous = chains.get(key);
    const next = previous ? previous.then(() => publishOne(ctx, entry)) : publishOne(ctx, entry);
    chains.set(key, next);
    all.push(next);
  }
  const acks = await settle();
  for (const ack of acks) {
    if (ack.stream !== ctx.stream) {
      throw new AuditLogError('PUBLISH_FAILED', `JetStream stored an entry in stream "${ack.stream}", not "${ctx.stream}"`);
    }
  }
  const stored = acks.filter((a) => !a.duplicate);
  return {
    entries: entries.length,
    duplicates: acks.length - stored.length,
    lastEntryId: String(entries[entries.length - 1]?.id ?? ''),
    lastSequence: stored.reduce((max, a) => Math.max(max, a.seq), 0),
  };
}
