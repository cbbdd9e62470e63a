import { baseline } from '../../history';
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
  --prune             also remove capture from tables no longer in the config, or dropped
                      (asks first)
  --baseline          then record a baseline entry for each existing row without entries
                      (see auditlog baseline)
  --yes               do not ask for confirmation
  --owner-role NAME   role that owns the audit schema and runs the capture (config: roles.owner)
  --app-role NAME     the application's role: may write audited tables, never the log (roles.app)
  --log-access MODE   read (default) or none: may the app role SELECT the log (roles.appReadsLog)
  --bypass-role NAME  members may switch capture off per transaction (roles.bypass)
${CONNECTION_HELP}`,
  options: {
    ...CONNECTION_OPTIONS,
    'dry-run': { type: 'boolean' },
    prune: { type: 'boolean' },
    baseline: { type: 'boolean' },
    yes: { type: 'boolean' },
    'owner-role': { type: 'string' },
    'app-role': { type: 'string' },
    'log-access': { type: 'string' },
    'bypass-role': { type: 'string' },
  },
  async run(values, _positionals, io) {
    const config = await loadConfig(values, io, true);
    const logAccess = values['log-access'];
    if (logAccess !== undefined && logAccess !== 'read' && logAccess !== 'none') {
      io.err(`auditlog install: --log-access must be read or none, got "${String(logAccess)}"`);
      return EXIT.USAGE;
    }
    // Flags over the config file.
    const roles = {
      owner: values['owner-role'] as string | undefined,
      app: values['app-role'] as string | undefined,
      bypass: values['bypass-role'] as string | undefined,
      appReadsLog: logAccess === undefined ? undefined : logAccess === 'read',
    };
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
      const result = await install(client, config, { prune: Boolean(values.prune), roles, log: (line) => io.out(line) });
      io.out(`done: ${result.installed.length} installed or updated, ${result.unchanged.length} unchanged` +
        `${result.pruned.length ? `, ${result.pruned.length} removed` : ''}` +
        `${result.migrationsApplied.length ? `, ${result.migrationsApplied.length} migration(s) applied` : ''}`);
      if (values.baseline) {
        // After the install committed: the baseline is many short transactions of its own.
        const b = await baseline(client, { schema: config.schema, log: (line) => io.out(`baseline ${line}`) });
        io.out(`baseline: ${b.recorded} entr${b.recorded === 1 ? 'y' : 'ies'} recorded`);
      }
      return EXIT.OK;
    });
  },
};
