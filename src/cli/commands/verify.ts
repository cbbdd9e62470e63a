import { verify } from '../../security/verify';
import { CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, databaseUrl, loadConfig, withClient, type Command } from '../common';

export { verify };

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'seal new log entries and check the log against its hash chain; exit 1 if tampered',
  help: `Usage: auditlog verify [options]

Needs "tamperEvidence": true in the config. Seals the entries of every transaction that ended
since the last run (one hash-chain link), then checks every sealed entry, the chain itself and
the capture triggers. Prints the chain head ("batch:digest"): keep it outside the database and
pass it back with --anchor to also detect a chain rewritten by a superuser.

Exits 0 when intact, 1 listing the ids of entries edited, deleted or inserted out of band
(and any dropped, disabled or outdated capture trigger), 2 on bad usage or config.

Options:
  --check-only        do not seal new entries, only check
  --anchor B:DIGEST   a chain head printed earlier: the chain must still contain it
  --json              print the report as JSON
${CONNECTION_HELP}`,
  options: {
    ...CONNECTION_OPTIONS,
    'check-only': { type: 'boolean' },
    anchor: { type: 'string' },
    json: { type: 'boolean' },
  },
  async run(values, _positionals, io) {
    const config = await loadConfig(values, io);
    const report = await withClient(databaseUrl(values, io), (client) =>
      verify(client, config, { seal: !values['check-only'], anchor: values.anchor as string | undefined }));
    if (values.json) {
      io.out(JSON.stringify(report, null, 2));
      return report.intact ? EXIT.OK : EXIT.FAILURE;
    }
    io.out(`sealed ${report.sealedNow} new entr${report.sealedNow === 1 ? 'y' : 'ies'}; the chain covers ${report.sealedTotal}; head ${report.head ?? '(none)'}`);
    if (report.droppedEntries > 0) {
      io.out(`${report.droppedEntries} entr${report.droppedEntries === 1 ? 'y was' : 'ies were'} removed by retention or flush (recorded in dropped_range): checked from the oldest kept entry`);
    }
    for (const p of report.problems) {
      io.out(p.entryId !== null ? `entry ${p.entryId}: ${p.problem}` : p.problem);
    }
    for (const t of report.status.tables.filter((t) => t.state !== 'installed')) {
      io.out(`${t.table}: capture ${t.state}${t.detail ? ` (${t.detail})` : ''}`);
    }
    if (report.intact) {
      io.out('intact');
      return EXIT.OK;
    }
    const ids = [...new Set(report.problems.map((p) => p.entryId).filter((id): id is string => id !== null))];
    io.out(`BROKEN${ids.length > 0 ? `: entries ${ids.join(', ')}` : ''}${report.status.drift ? '; capture drift (see above)' : ''}`);
    return EXIT.FAILURE;
  },
};
