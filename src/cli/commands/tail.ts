import { subscribe } from '../../events';
import type { LogEntry } from '../../interfaces';
import { stringifyExactJson } from '../../json';
import { CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, databaseUrl, loadConfig, withClient, type Command, type Io } from '../common';

export { subscribe };

/** Long diffs are cut in text mode; --json prints entries whole. */
const MAX_CHANGES_CHARS = 300;

export function formatEntry(e: LogEntry): string {
  const parts = [
    e.ts instanceof Date ? e.ts.toISOString() : String(e.ts),
    `#${e.id}`,
    e.action,
    e.table_schema !== null ? `${e.table_schema}.${e.table_name}` : (e.table_name ?? '-'),
  ];
  if (e.object_pk !== null) parts.push(`pk=${e.object_pk}`);
  if (e.actor !== null) parts.push(`actor=${e.actor}`);
  if (e.cid !== null) parts.push(`cid=${e.cid}`);
  if (e.changes !== null) {
    const text = stringifyExactJson(e.changes);
    parts.push(text.length > MAX_CHANGES_CHARS ? `${text.slice(0, MAX_CHANGES_CHARS)}… (${text.length} chars)` : text);
  }
  return parts.join('  ');
}

/** The config's audit schema when there is a config; "auditlog" when there is none. */
async function auditSchema(values: Record<string, unknown>, io: Io): Promise<string> {
  try {
    return (await loadConfig(values, io)).schema;
  } catch (err) {
    if (!values.config && (err as { code?: string }).code === 'CONFIG_NOT_FOUND') return 'auditlog';
    throw err;
  }
}

function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export const tailCommand: Command = {
  name: 'tail',
  summary: 'print log entries live as they commit',
  help: `Usage: auditlog tail [options]

Prints every log entry as its transaction commits, until Ctrl-C (SIGINT) or SIGTERM. Starts at
"now" and keeps no cursor: for delivery that survives restarts use subscribe() with a name.
Status lines go to stderr, entries to stdout.

Options:
  --table TABLE       only this table (schema.table or table); repeat for several
  --actor ACTOR       only entries written with this auditlog.actor; repeat for several
  --json              one JSON object per line (the full entry) instead of a summary line
${CONNECTION_HELP}`,
  options: {
    ...CONNECTION_OPTIONS,
    table: { type: 'string', multiple: true },
    actor: { type: 'string', multiple: true },
    json: { type: 'boolean' },
  },
  async run(values, _positionals, io) {
    const url = databaseUrl(values, io);
    const schema = await auditSchema(values, io);
    const tables = values.table as unknown as string[] | undefined;
    const actors = values.actor as unknown as string[] | undefined;
    await withClient(url, async () => undefined); // fails fast, naming host and port, if the server does not answer
    const sub = await subscribe({ connectionString: url.url, schema, tables, actors, log: (line) => io.err(`auditlog tail: ${line}`) },
      (entries) => {
        for (const e of entries) io.out(values.json ? stringifyExactJson(e) : formatEntry(e));
      });
    sub.on('error', (err) => io.err(`auditlog tail: ${err.message}`));
    const filters = [tables && `table ${tables.join(', ')}`, actors && `actor ${actors.join(', ')}`].filter(Boolean);
    io.err(`auditlog tail: following "${schema}".log_entry${filters.length ? ` (${filters.join('; ')})` : ''}; Ctrl-C to stop`);
    await stopSignal();
    await sub.close();
    return EXIT.OK;
  },
};
