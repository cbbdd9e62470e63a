import { maintain } from '../../maintain';
import { CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, databaseUrl, loadConfig, withClient, type Command } from '../common';

export { maintain };

export const maintainCommand: Command = {
  name: 'maintain',
  summary: 'create log partitions ahead, move strays, drop partitions past retention',
  help: `Usage: auditlog maintain [options]

For a log with "partitioning" in the config: creates the partitions of the current period and
the next ones ("premake"), moves entries that a default partition caught into partitions of
their own, and with "retention" drops every partition whose entries are all older than it
(recorded in dropped_range and as a "retention" entry). Gives new partitions the statistics
the actor and correlation-id lookups plan by. Idempotent; run it from cron every few
minutes. One run at a time per audit schema (an advisory lock); a step whose lock on the log
is not granted within --lock-timeout is left to the next run (exit code 0, reported).

Options:
  --lock-timeout MS   wait at most this long for a lock per step (default 5000)
  --json              print what was done as JSON
${CONNECTION_HELP}`,
  options: { ...CONNECTION_OPTIONS, 'lock-timeout': { type: 'string' }, json: { type: 'boolean' } },
  async run(values, positionals, io) {
    if (positionals.length > 0) {
      io.err(`auditlog maintain: unexpected argument ${JSON.stringify(positionals[0])}\n\n${maintainCommand.help}`);
      return EXIT.USAGE;
    }
    let lockTimeoutMs: number | undefined;
    if (values['lock-timeout'] !== undefined) {
      lockTimeoutMs = Number(values['lock-timeout']);
      if (!Number.isInteger(lockTimeoutMs) || lockTimeoutMs < 1) {
        io.err('auditlog maintain: --lock-timeout must be a positive number of milliseconds');
        return EXIT.USAGE;
      }
    }
    const config = await loadConfig(values, io);
    const lines: string[] = [];
    const result = await withClient(databaseUrl(values, io), (client) =>
      maintain(client, config, { lockTimeoutMs, log: (line) => (values.json ? lines.push(line) : io.out(line)) }));
    if (values.json) io.out(JSON.stringify(result, null, 2));
    else if (result.created.length === 0 && result.dropped.length === 0 && result.skipped.length === 0) io.out('nothing to do');
    return EXIT.OK;
  },
};
