import { existsSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE_NAMES } from '../../config/load';
import { uninstall } from '../../install';
import {
  CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, confirm, databaseUrl, loadConfig, withClient, type Command, type Io,
} from '../common';

export { uninstall };

/** The audit schema: --schema, else the config's, else "auditlog". No config is needed. */
async function schemaFor(values: Record<string, unknown>, io: Io): Promise<string> {
  if (typeof values.schema === 'string') return values.schema;
  const hasConfig = values.config !== undefined || CONFIG_FILE_NAMES.some((n) => existsSync(path.join(io.cwd, n)));
  if (!hasConfig) return 'auditlog';
  return (await loadConfig(values, io)).schema;
}

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
    const schema = await schemaFor(values, io);
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
