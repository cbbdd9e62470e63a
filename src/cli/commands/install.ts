import { install, renderInstall } from '../../install';
import { CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, confirm, databaseUrl, loadConfig, withClient, type Command } from '../common';

export { install, renderInstall };

export const installCommand: Command = {
  name: 'install',
  summary: 'create or update the audit schema and capture triggers from the config',
  help: `Usage: auditlog install [options]

Applies the audit schema migrations and creates or replaces the capture triggers of every
table in the config, in one transaction under an advisory lock. Tables already up to date are
left untouched; running it twice is a no-op. Run it again after ALTER TABLE on an audited table.

Options:
  --dry-run           print the SQL it would run, change nothing
  --prune             also remove capture from tables no longer in the config (asks first)
  --yes               do not ask for confirmation
${CONNECTION_HELP}`,
  options: {
    ...CONNECTION_OPTIONS,
    'dry-run': { type: 'boolean' },
    prune: { type: 'boolean' },
    yes: { type: 'boolean' },
  },
  async run(values, _positionals, io) {
    const config = await loadConfig(values, io);
    const url = databaseUrl(values, io);
    return withClient(url, async (client) => {
      if (values['dry-run']) {
        io.out(await renderInstall(client, config, { prune: Boolean(values.prune) }));
        return EXIT.OK;
      }
      if (values.prune && !(await confirm('Remove capture from tables no longer in the config?', Boolean(values.yes), io))) {
        io.err('aborted');
        return EXIT.FAILURE;
      }
      const result = await install(client, config, { prune: Boolean(values.prune), log: (line) => io.out(line) });
      io.out(`done: ${result.installed.length} installed or updated, ${result.unchanged.length} unchanged` +
        `${result.pruned.length ? `, ${result.pruned.length} removed` : ''}` +
        `${result.migrationsApplied.length ? `, ${result.migrationsApplied.length} migration(s) applied` : ''}`);
      return EXIT.OK;
    });
  },
};
