// The real NATS server with JetStream (127.0.0.1:4222, started by .ci/run): streams made per
// test, read back whole, and deleted.
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';

export const NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** Test streams are named with this prefix; leftovers of killed runs are deleted after a while. */
const PREFIX = 'PGAUDITLOG_TEST_';

export interface StoredMessage {
  seq: number;
  subject: string;
  msgId: string | undefined;
  entryId: string;
  body: Record<string, unknown>;
}

export interface TestNats {
  nc: NatsConnection;
  jsm: JetStreamManager;
  /** A fresh stream name (not created). */
  streamName(label: string): string;
  createStream(config: Partial<StreamConfig> & { name: string; subjects: string[] }): Promise<void>;
  /** Every message of the stream, in stream order. */
  read(stream: string): Promise<StoredMessage[]>;
  count(stream: string): Promise<number>;
  /** Deletes the streams this helper named so far. */
  deleteStreams(): Promise<void>;
  /** Deletes the streams this helper named, and closes the connection. */
  close(): Promise<void>;
}

export async function openTestNats(): Promise<TestNats> {
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const named: string[] = [];
  const deleteStreams = async () => {
    while (named.length > 0) await jsm.streams.delete(named.pop()!).catch(() => undefined);
  };
  for await (const si of jsm.streams.list()) {
    const age = Date.now() - Date.parse(si.created);
    if (si.config.name.startsWith(PREFIX) && age > 10 * 60_000) await jsm.streams.delete(si.config.name).catch(() => undefined);
  }
  return {
    nc,
    jsm,
    streamName(label) {
      const name = `${PREFIX}${label.toUpperCase()}_${randomBytes(4).toString('hex').toUpperCase()}`;
      named.push(name);
      return name;
    },
    async createStream(config) {
      await jsm.streams.add(config);
    },
    async count(stream) {
      return (await jsm.streams.info(stream)).state.messages;
    },
    async read(stream) {
      const total = (await jsm.streams.info(stream)).state.messages;
      const out: StoredMessage[] = [];
      if (total === 0) return out;
      const consumer = await js.consumers.get(stream); // an ordered consumer from the first message
      while (out.length < total) {
        const batch = await consumer.fetch({ max_messages: Math.min(1000, total - out.length), expires: 5000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          out.push({
            seq: m.seq, subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), entryId: m.headers?.get('Auditlog-Entry-Id') ?? '',
            body: m.json<Record<string, unknown>>(),
          });
        }
        if (got === 0) throw new Error(`stream ${stream}: read ${out.length} of ${total} messages, then nothing more came`);
      }
      return out;
    },
    deleteStreams,
    async close() {
      await deleteStreams();
      await nc.close();
    },
  };
}
