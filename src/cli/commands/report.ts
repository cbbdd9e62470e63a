import { report } from '../../history';
import type { ReportCount } from '../../interfaces';
import { explainMissingSchema } from '../../history/common';
import {
  CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, SCHEMA_HELP, SCHEMA_OPTION, auditSchema, databaseUrl, withClient, type Command,
} from '../common';

export { report };

function section(title: string, counts: ReportCount[], none: string): string[] {
  if (counts.length === 0) return [`${title}: none`];
  const label = (c: ReportCount) => c.key ?? none;
  const width = Math.max(...counts.map((c) => label(c).length));
  return [`${title}:`, ...counts.map((c) => `  ${label(c).padEnd(width)}  ${c.count}`)];
}

export const reportCommand: Command = {
  name: 'report',
  summary: 'count log entries by table, action and actor over a time range',
  help: `Usage: auditlog report [--since TIME] [--until TIME] [--json] [options]

Counts the log entries in [since, until) by table, by action and by actor, with the total:
a compliance summary. TIME is ISO 8601: 2026-01-31 (midnight UTC), 2026-01-31T14:00:00Z or
2026-01-31T14:00:00+01:00.

Options:
  --since TIME        start, inclusive (default: 30 days before --until)
  --until TIME        end, exclusive (default: now)
  --json              print the report as JSON
${SCHEMA_HELP}
${CONNECTION_HELP}`,
  options: { ...CONNECTION_OPTIONS, ...SCHEMA_OPTION, since: { type: 'string' }, until: { type: 'string' }, json: { type: 'boolean' } },
  async run(values, positionals, io) {
    if (positionals.length > 0) {
      io.err(`auditlog report: unexpected argument ${JSON.stringify(positionals[0])}\n\n${reportCommand.help}`);
      return EXIT.USAGE;
    }
    const schema = await auditSchema(values, io);
    const url = databaseUrl(values, io);
    const r = await withClient(url, (client) => report(client, {
      schema, since: values.since as string | undefined, until: values.until as string | undefined,
    })).catch((err: unknown) => { throw explainMissingSchema(err, schema); });
    if (values.json) {
      io.out(JSON.stringify(r, null, 2));
      return EXIT.OK;
    }
    io.out([
      `${r.total} log entr${r.total === 1 ? 'y' : 'ies'} from ${r.since.toISOString()} to ${r.until.toISOString()}`,
      ...section('by table', r.byTable, '(no table)'),
      ...section('by action', r.byAction, '(none)'),
      ...section('by actor', r.byActor, '(no actor)'),
    ].join('\n'));
    return EXIT.OK;
  },
};
