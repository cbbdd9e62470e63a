import { uninstall } from '../../install';
import { CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, auditSchema, confirm, databaseUrl, withClient, type Command } from '../common';

export { uninstall };

export const uninstallCommand: Command = {
  name: 'uninstall',
  summary: 'remove every capture trigger (keeps the log unless --drop-schema)',
  help: `Usage: auditlog uninstall [options]

Removes every capture trigger and generated function of the audit schema, in one transaction.
The log entries are kept unless --drop-schema is given. Asks for confirmation unless --yes;
without a terminal and without --yes it refuses.

Options:
  --drop-schema       also drop the audit schema and EVERY log entry in it
  --schema NAME       audit schema (default: from the config, else "auditlog")
  --yes               do not ask for confirmation
${CONNECTION_HELP}`,
  options: {
    ...CONNECTION_OPTIONS,
    'drop-schema': { type: 'boolean' },
    schema: { type: 'string' },
    yes: { type: 'boolean' },
  },
  async run(values, _positionals, io) {
    const schema = await auditSchema(values, io);
    const url = databaseUrl(values, io);
    const dropSchema = Boolean(values['drop-schema']);
    const question = dropSchema
      ? `Stop auditing and DELETE every log entry in schema "${schema}"?`
      : `Stop auditing every table captured by schema "${schema}"?`;
    if (!(await confirm(question, Boolean(values.yes), io))) {
      io.err('aborted');
      return EXIT.FAILURE;
    }
    return withClient(url, async (client) => {
      const result = await uninstall(client, schema, { dropSchema, log: (line) => io.out(line) });
      io.out(`done: capture removed from ${result.tables.length} table(s)${dropSchema ? `; schema "${schema}" dropped` : '; log entries kept'}`);
      return EXIT.OK;
    });
  },
};
