import { status } from '../../install';
import { CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, databaseUrl, loadConfig, withClient, type Command } from '../common';

export { status };

export const statusCommand: Command = {
  name: 'status',
  summary: 'compare the database with the config; exit 1 on drift',
  help: `Usage: auditlog status [options]

Lists every audited table as installed, outdated (config or columns changed, or trigger
disabled), missing (in the config, no trigger) or orphaned (trigger, not in the config), and
pending audit schema migrations. Exits 0 when everything matches, 1 on any drift.

Options:
  --json              print the report as JSON
${CONNECTION_HELP}`,
  options: { ...CONNECTION_OPTIONS, json: { type: 'boolean' } },
  async run(values, _positionals, io) {
    const config = await loadConfig(values, io, true);
    const report = await withClient(databaseUrl(values, io), (client) => status(client, config));
    if (values.json) {
      io.out(JSON.stringify(report, null, 2));
    } else {
      const width = Math.max(5, ...report.tables.map((t) => t.table.length));
      io.out(`audit schema "${report.schema}": ${report.pendingMigrations === 0 ? 'up to date' : `${report.pendingMigrations} migration(s) pending`}`);
      for (const t of report.tables) {
        io.out(`${t.table.padEnd(width)}  ${t.state.toUpperCase().padEnd(9)}${t.detail ? `  ${t.detail}` : ''}`);
      }
      for (const p of report.problems) io.out(`problem: ${p}`);
      if (!report.ddlWatch) {
        io.out('DDL watch: not installed (install as a superuser to get it); after DROP or RENAME COLUMN on an audited table, writes to it fail until auditlog install');
      }
      io.out(report.drift ? 'drift: run auditlog install' : 'everything matches the config');
    }
    return report.drift ? EXIT.FAILURE : EXIT.OK;
  },
};
