import { forwardToNats } from '../../forward';
import type { ForwardedBatch } from '../../interfaces';
import { AuditLogError } from '../../errors';
import { CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, SCHEMA_HELP, SCHEMA_OPTION, auditSchema, databaseUrl, type Command } from '../common';

export { forwardToNats };

/** At most one progress line this often while entries flow. */
const PROGRESS_EVERY_MS = 2_000;

function positiveSeconds(flag: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new AuditLogError('INVALID_ARGUMENT', `--${flag} must be a whole number of seconds, got "${String(value)}"`);
  return n * 1000;
}

export const forwardCommand: Command = {
  name: 'forward',
  summary: 'publish every log entry to NATS JetStream, exactly once, from a durable cursor',
  help: `Usage: auditlog forward --nats URL [options]

Publishes every committed log entry to a NATS JetStream stream on the subject
auditlog.<schema>.<table>.<action> (each part escaped: see docs/forward.md), with
Nats-Msg-Id "<source>:<entry id>", and moves its durable cursor only after JetStream has
acknowledged the batch. Restarted with the same --name it continues where it stopped; what it
had published but not yet recorded is published again and dropped by JetStream as a duplicate.
Runs until Ctrl-C (SIGINT) or SIGTERM, which let the batch in flight finish first.
Progress lines go to stdout, connection problems to stderr.

Options:
  --nats URL               NATS server, e.g. nats://127.0.0.1:4222 (repeat for a cluster; required)
  --stream NAME            JetStream stream (default AUDITLOG); created with subjects auditlog.>
                           when missing; an existing one must cover auditlog.>
  --name NAME              durable cursor name (default forwarder): one per forwarder
  --table TABLE            only this table (schema.table or table); repeat for several
  --from beginning|now     where a new cursor starts (default beginning: the whole log)
  --duplicate-window SECS  duplicate window of a stream created now (default 600)
  --batch-size N           entries per batch (default 500)
${SCHEMA_HELP}
${CONNECTION_HELP}`,
  options: {
    ...CONNECTION_OPTIONS,
    ...SCHEMA_OPTION,
    nats: { type: 'string', multiple: true },
    stream: { type: 'string' },
    name: { type: 'string' },
    table: { type: 'string', multiple: true },
    from: { type: 'string' },
    'duplicate-window': { type: 'string' },
    'batch-size': { type: 'string' },
  },
  async run(values, _positionals, io) {
    const servers = values.nats as unknown as string[] | undefined;
    if (!servers || servers.length === 0) throw new AuditLogError('INVALID_ARGUMENT', '--nats URL is required, e.g. --nats nats://127.0.0.1:4222');
    const from = values.from as string | undefined;
    if (from !== undefined && from !== 'beginning' && from !== 'now') throw new AuditLogError('INVALID_ARGUMENT', `--from must be "beginning" or "now", got "${from}"`);
    const batch = values['batch-size'];
    const batchSize = batch === undefined ? undefined : Number(batch);
    if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1)) throw new AuditLogError('INVALID_ARGUMENT', `--batch-size must be a positive integer, got "${String(batch)}"`);
    const url = databaseUrl(values, io);
    const schema = await auditSchema(values, io);
    const say = (line: string) => io.err(`auditlog forward: ${line}`);

    const forwarder = await forwardToNats({
      connectionString: url.url, servers, schema,
      stream: values.stream as string | undefined, name: values.name as string | undefined,
      tables: values.table as unknown as string[] | undefined,
      startFrom: from as 'beginning' | 'now' | undefined,
      duplicateWindowMs: positiveSeconds('duplicate-window', values['duplicate-window']),
      batchSize,
      log: say,
    });
    forwarder.on('error', (err) => say(err.message));

    const total = { entries: 0, duplicates: 0, lastEntryId: '', lastSequence: 0 };
    let reported = { ...total };
    const progress = () => {
      if (total.entries === reported.entries) return;
      io.out(`forwarded ${total.entries} entries (${total.duplicates} already in the stream, dropped as duplicates); ` +
        `last entry #${total.lastEntryId}, stream sequence ${total.lastSequence}`);
      reported = { ...total };
    };
    forwarder.on('forwarded', (b: ForwardedBatch) => {
      total.entries += b.entries;
      total.duplicates += b.duplicates;
      total.lastEntryId = b.lastEntryId;
      if (b.lastSequence > 0) total.lastSequence = b.lastSequence;
    });
    const timer = setInterval(progress, PROGRESS_EVERY_MS);
    io.out(`forwarding "${schema}".log_entry to stream "${forwarder.stream}" as "${forwarder.name}"; Ctrl-C to stop`);

    const signal = await new Promise<string>((resolve) => {
      const stop = (sig: string) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        // A second signal while stopping: leave at once (the batch in flight is sent again next time).
        const force = () => process.exit(130);
        process.once('SIGINT', force);
        process.once('SIGTERM', force);
        resolve(sig);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    say(`${signal}: finishing the batch in flight, then stopping (signal again to stop at once)`);
    await forwarder.close();
    clearInterval(timer);
    progress();
    io.out(`stopped; ${total.entries} entries forwarded by this run`);
    return EXIT.OK;
  },
};
