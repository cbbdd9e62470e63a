import { baseline } from '../../history';
import { explainMissingSchema } from '../../history/common';
import {
  CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, SCHEMA_HELP, SCHEMA_OPTION, auditSchema, confirm, databaseUrl, positiveIntegerOption, withClient, type Command,
} from '../common';

export { baseline };

export const baselineCommand: Command = {
  name: 'baseline',
  summary: 'record the current state of rows older than the log, for time travel',
  help: `Usage: auditlog baseline [--table T] [--yes] [options]

Records one "baseline" entry per existing row of every audited table (or of --table) that
has no entry yet: its whole tracked row, masked as configured, as [null, value] like an
insert. Time travel (history --at, stateAt) then starts from it; before it, the state is
unknown. Reads the table in primary key order, in batches that are each a short
transaction, printing progress per batch. Running it again records nothing for rows that
already have a baseline or any other entry. Run it as the role that runs install.

Options:
  --table T           only this audited table ("schema.table" or "table")
  --batch-size N      rows per transaction (default 1000)
  --yes               do not ask for confirmation
${SCHEMA_HELP}
${CONNECTION_HELP}`,
  options: {
    ...CONNECTION_OPTIONS, ...SCHEMA_OPTION, table: { type: 'string' }, 'batch-size': { type: 'string' }, yes: { type: 'boolean' },
  },
  async run(values, positionals, io) {
    if (positionals.length > 0) {
      io.err(`auditlog baseline: unexpected argument ${JSON.stringify(positionals[0])}\n\n${baselineCommand.help}`);
      return EXIT.USAGE;
    }
    const table = values.table as string | undefined;
    const batchSize = positiveIntegerOption(values, 'batch-size');
    const schema = await auditSchema(values, io);
    const url = databaseUrl(values, io);
    if (!(await confirm(`Record a baseline entry for every row of ${table ?? 'every audited table'} that has no entry yet?`, Boolean(values.yes), io))) {
      io.err('aborted');
      return EXIT.FAILURE;
    }
    return withClient(url, async (client) => {
      const result = await baseline(client, { schema, table, batchSize, log: (line) => io.out(line) });
      io.out(`done: ${result.recorded} baseline entr${result.recorded === 1 ? 'y' : 'ies'} recorded in ${result.tables.length} table(s)`);
      return EXIT.OK;
    }).catch((err: unknown) => { throw explainMissingSchema(err, schema); });
  },
};
