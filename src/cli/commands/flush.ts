import { flush } from '../../history';
import { parseInstant } from '../../history/common';
import { explainMissingSchema } from '../../history/common';
import {
  CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, SCHEMA_HELP, SCHEMA_OPTION, auditSchema, confirm, databaseUrl, positiveIntegerOption, withClient, type Command,
} from '../common';

export { flush };

export const flushCommand: Command = {
  name: 'flush',
  summary: 'delete old log entries (retention), in small batches',
  help: `Usage: auditlog flush [--before-date DATE] [--table T] [--yes] [options]

Deletes log entries, oldest first, in batches of short transactions so writers are never
blocked for long, and prints how many were removed. Without --before-date it deletes every
entry (of --table, if given). Records one "flush" entry saying what was removed.
Asks for confirmation unless --yes; without a terminal and without --yes it refuses.

Options:
  --before-date DATE  delete entries older than DATE, ISO 8601 only: 2026-01-31 (midnight UTC),
                      2026-01-31T14:00:00Z or 2026-01-31T14:00:00+01:00
  --table T           only entries of this table ("schema.table" or "table")
  --batch-size N      entries per transaction (default 5000)
  --yes               do not ask for confirmation
${SCHEMA_HELP}
${CONNECTION_HELP}`,
  options: {
    ...CONNECTION_OPTIONS, ...SCHEMA_OPTION,
    'before-date': { type: 'string' }, table: { type: 'string' }, 'batch-size': { type: 'string' }, yes: { type: 'boolean' },
  },
  async run(values, positionals, io) {
    if (positionals.length > 0) {
      io.err(`auditlog flush: unexpected argument ${JSON.stringify(positionals[0])}\n\n${flushCommand.help}`);
      return EXIT.USAGE;
    }
    const beforeDate = values['before-date'] as string | undefined;
    const table = values.table as string | undefined;
    // Check the date before asking, so nobody confirms a command that cannot run.
    if (beforeDate !== undefined) parseInstant(beforeDate, '--before-date');
    const batchSize = positiveIntegerOption(values, 'batch-size');
    const schema = await auditSchema(values, io);
    const url = databaseUrl(values, io);
    const what = `${table ? `log entries of ${table}` : 'log entries'}${beforeDate ? ` before ${beforeDate}` : ' (ALL of them)'}`;
    if (!(await confirm(`Delete ${what} from schema "${schema}"?`, Boolean(values.yes), io))) {
      io.err('aborted');
      return EXIT.FAILURE;
    }
    return withClient(url, async (client) => {
      const result = await flush(client, { schema, beforeDate, table, batchSize });
      io.out(`removed ${result.deleted} log entr${result.deleted === 1 ? 'y' : 'ies'}`);
      return EXIT.OK;
    }).catch((err: unknown) => { throw explainMissingSchema(err, schema); });
  },
};
