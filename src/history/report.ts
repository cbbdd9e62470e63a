// Counts by table, action and actor over a time range (get_audit_summary), in one scan of
// the range through BRIN(ts).
import { prepared } from '../db';
import { displayName } from '../ident';
import type { AuditReport, ReportCount, ReportOptions } from '../interfaces';
import { invalid, parseInstant, schemaOf, type Db } from './common';

export async function report(db: Db, options: ReportOptions = {}): Promise<AuditReport> {
  const schema = schemaOf(options);
  // Bounds resolved once, kept as text too: a JavaScript Date would round away microseconds.
  const { rows: [range] } = await db.query<{ since: Date; until: Date; since_text: string; until_text: string }>(prepared(
    `SELECT b.since, b.until, b.since::text AS since_text, b.until::text AS until_text
     FROM (SELECT coalesce($1::timestamptz, coalesce($2::timestamptz, now()) - interval '30 days') AS since,
                  coalesce($2::timestamptz, now()) AS until) AS b`,
    [options.since === undefined ? null : parseInstant(options.since, 'since'),
      options.until === undefined ? null : parseInstant(options.until, 'until')],
  ));
  const { since, until, since_text: sinceText, until_text: untilText } = range!;
  if (since > until) throw invalid('since must not be after until');
  const { rows } = await db.query<{
    table_schema: string | null; table_name: string | null; action: string | null; actor: string | null; g: number; n: string;
  }>(
    // Planned for its bounds on every call, not prepared: see readQuery() in ./query.
    `SELECT table_schema, table_name, action, actor, GROUPING(table_schema, table_name, action, actor) AS g, count(*) AS n
     FROM ${schema}.log_entry
     WHERE ts >= $1::timestamptz AND ts < $2::timestamptz
     GROUP BY GROUPING SETS ((table_schema, table_name), (action), (actor), ())`,
    [sinceText, untilText],
  );
  const out: AuditReport = { since, until, total: 0, byTable: [], byAction: [], byActor: [] };
  for (const r of rows) {
    const count = Number(r.n);
    // GROUPING bits, most significant first: table_schema, table_name, action, actor (1 = not grouped by).
    if (r.g === 0b1111) out.total = count;
    else if (r.g === 0b0011) {
      out.byTable.push({ key: r.table_name === null ? null : displayName({ schema: r.table_schema ?? '', name: r.table_name }), count });
    } else if (r.g === 0b1101) out.byAction.push({ key: r.action, count });
    else if (r.g === 0b1110) out.byActor.push({ key: r.actor, count });
  }
  const order = (a: ReportCount, b: ReportCount) => b.count - a.count || String(a.key).localeCompare(String(b.key));
  out.byTable.sort(order);
  out.byAction.sort(order);
  out.byActor.sort(order);
  return out;
}
