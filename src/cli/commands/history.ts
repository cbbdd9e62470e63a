import { AuditLogError } from '../../errors';
import { stringifyExactJson } from '../../json';
import type { ClientBase } from 'pg';
import { allHistory, describeEntries, isUnknownState, stateAt } from '../../history';
import { describeField, entriesInColumnOrder } from '../../history/display';
import { displayName, quoteIdent } from '../../ident';
import type { DisplayEntry, ObjectKey, UnknownState } from '../../interfaces';
import { explainMissingSchema, parseTable } from '../../history/common';
import {
  CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, SCHEMA_HELP, SCHEMA_OPTION, auditSchema, databaseUrl, withClient, type Command,
} from '../common';

export { allHistory, stateAt };

/**
 * <pk> on the command line: a JSON array is a composite key, anything else the key's text.
 * Integers beyond JavaScript's safe range stay exact (as bigint), e.g. '[9007199254740993, 2]'.
 */
export function parseKeyArgument(text: string): ObjectKey {
  if (!text.trimStart().startsWith('[')) return text;
  const bad = () => new AuditLogError('INVALID_ARGUMENT',
    `composite key ${JSON.stringify(text)} is not a JSON array of values; write it like '[7, 2]' or '["eu", 42]'`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw bad();
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || parsed.some((p) => typeof p === 'object' && p !== null)) throw bad();
  // Re-read unsafe integers from their own digits; JSON.parse has already rounded them.
  const tokens = text.match(/"(?:[^"\\]|\\.)*"|[^\s,[\]]+/g) ?? [];
  return parsed.map((value, i) =>
    typeof value === 'number' && !Number.isSafeInteger(value) && /^-?\d+$/.test(tokens[i] ?? '') ? BigInt(tokens[i]!) : value,
  ) as ObjectKey;
}

function formatEntry(e: DisplayEntry): string {
  const who = [
    e.actor ? `by ${e.actor}` : `by db user ${e.db_user}`,
    e.cid ? `cid ${e.cid}` : '',
    e.remote_addr ? `from ${e.remote_addr}` : '',
  ].filter(Boolean).join('  ');
  const head = `#${e.id}  ${e.ts.toISOString()}  ${e.action.toUpperCase()}  ${who}`;
  const lines = e.fields.map((f) => `    ${describeField(f, e.action)}`);
  if (e.fields.length === 0) lines.push(`    ${e.summary}`);
  return [head, ...lines].join('\n');
}

function unknownReason(state: UnknownState): string {
  const first = state.earliest;
  if (state.reason === 'no-entries') {
    return 'the log has no entry for it (a row older than the log that was never recorded: run auditlog baseline)';
  }
  const when = first ? `#${first.id} at ${first.ts.toISOString()}` : '';
  if (state.reason === 'before-baseline') {
    return `that is before its baseline entry ${when}; the row existed then, but the log starts later`;
  }
  return `that is before its first entry ${when} (${first?.action}); the row existed then, unrecorded`;
}

/** No entries: say whether the table is audited at all, or does not even exist (exit 1). */
async function checkAudited(client: ClientBase, table: string, schema: string): Promise<void> {
  const t = parseTable(table);
  const { rows: [r] } = await client.query<{ exists: boolean; audited: boolean }>(
    `SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text)) IS NOT NULL AS exists,
            EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.tracked_table WHERE table_schema = $1 AND table_name = $2) AS audited`,
    [t.schema, t.name],
  );
  if (!r!.audited) {
    throw new AuditLogError('NOT_FOUND', r!.exists
      ? `table ${displayName(t)} is not audited by schema "${schema}" and has no entries: add it to the config and run auditlog install`
      : `table ${displayName(t)} does not exist and has no entries in schema "${schema}"`);
  }
}

export const historyCommand: Command = {
  name: 'history',
  summary: "show an object's changes, or its state at a past instant",
  help: `Usage: auditlog history <table> <pk> [options]

Shows every log entry of one object, newest first: a header per entry (id, time, action,
actor, correlation id) and one line per changed field in the table's column order, with
display names from the table's mapping; masked fields show only that they changed. Values
are printed with the digits stored (numeric, bigint, json numbers). Exit codes: 0 shown,
1 the table does not exist or is not audited, 2 bad usage, 3 state unknown (--at).

  <table>   "schema.table" or "table" (schema public); quoted parts keep their case: '"Mixed".t'
  <pk>      the primary key value: 42, or a UUID, or text as stored
            composite keys as a JSON array in key-column order: '[7, 2]' or '["eu", 42]'

Options:
  --at TIME           print the object's state at TIME as one JSON object, columns in table
                      order (null when it did not exist then); when the log cannot tell (TIME
                      is before the row's first entry and that is not its insert, e.g. before
                      its baseline entry), says so on stderr and exits 3; TIME is ISO 8601:
                      2026-01-31 (UTC midnight), 2026-01-31T14:00:00Z or 2026-01-31T14:00:00+01:00
  --json              print the entries as a JSON array, newest first
  --limit N           at most N entries (default: all)
${SCHEMA_HELP}
${CONNECTION_HELP}`,
  options: { ...CONNECTION_OPTIONS, ...SCHEMA_OPTION, at: { type: 'string' }, json: { type: 'boolean' }, limit: { type: 'string' } },
  async run(values, positionals, io) {
    if (positionals.length !== 2) {
      io.err(`auditlog history: expected <table> <pk>, got ${positionals.length} argument(s)\n\n${historyCommand.help}`);
      return EXIT.USAGE;
    }
    const [table, pkText] = positionals as [string, string];
    const key = parseKeyArgument(pkText);
    let limit = Infinity;
    if (values.limit !== undefined) {
      limit = Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new AuditLogError('INVALID_ARGUMENT', `--limit must be a positive integer, not ${JSON.stringify(values.limit)}`);
    }
    const schema = await auditSchema(values, io);
    const url = databaseUrl(values, io);
    return withClient(url, async (client) => {
      if (typeof values.at === 'string') {
        const state = await stateAt(client, table, key, values.at, { schema });
        if (isUnknownState(state)) {
          if (state.reason === 'no-entries') await checkAudited(client, table, schema);
          io.err(`auditlog history: the state of ${table} ${pkText} at ${values.at} is unknown: ${unknownReason(state)}`);
          return EXIT.UNKNOWN;
        }
        io.out(stringifyExactJson(state, 2));
        return EXIT.OK;
      }
      const entries = await allHistory(client, { schema, table, objectPk: key }, limit);
      if (entries.length === 0) await checkAudited(client, table, schema);
      if (values.json) {
        io.out(stringifyExactJson(await entriesInColumnOrder(client, entries, { schema }), 2));
        return EXIT.OK;
      }
      if (entries.length === 0) {
        io.out(`no entries for ${table} ${pkText}`);
        return EXIT.OK;
      }
      const described = await describeEntries(client, entries, { schema });
      io.out(described.map(formatEntry).join('\n'));
      return EXIT.OK;
    }).catch((err: unknown) => { throw explainMissingSchema(err, schema); });
  },
};
