// revert(entryId): write an update entry's old values back, as an ordinary UPDATE that the
// capture trigger logs with the caller's context. Values never leave SQL (no JavaScript
// number or date conversion in between): jsonb_populate_record turns them back into the
// column types.
import { readTables, tableKey } from '../catalog';
import { AuditLogError } from '../errors';
import { displayName, qualified, quoteIdent } from '../ident';
import { changedExpression, MASK } from '../generate';
import type { LogEntry, RevertOptions, RevertResult } from '../interfaces';
import { inCallerSession, readTableConfigs, schemaOf, type Db } from './common';
import { getEntry } from './query';

function refuse(id: string, why: string): AuditLogError {
  return new AuditLogError('REVERT_REFUSED', `cannot revert entry ${id}: ${why}`);
}

export async function revert(db: Db, entryId: string | number | bigint, options: RevertOptions = {}): Promise<RevertResult> {
  const schema = schemaOf(options);
  return inCallerSession(db, async (client) => {
    const entry = await getEntry(client, entryId, options);
    const id = String(entryId);
    if (!entry) throw new AuditLogError('NOT_FOUND', `log entry ${id} does not exist`);
    if (entry.action !== 'update') {
      throw refuse(id, `it records ${JSON.stringify(entry.action)}; only update entries have previous values to write back`);
    }
    if (entry.table_schema === null || entry.table_name === null || entry.object_pk === null || !entry.changes) {
      throw refuse(id, 'it names no table, object or changes');
    }
    const table = { schema: entry.table_schema, name: entry.table_name };
    const name = displayName(table);
    const config = (await readTableConfigs(client, schema, [table])).get(tableKey(table));
    if (!config) throw refuse(id, `${name} is not audited by this schema any more, so its write-back would not be logged`);
    const catalog = (await readTables(client, [table])).get(tableKey(table));
    if (!catalog) throw refuse(id, `table ${name} no longer exists`);

    const fields = Object.keys(entry.changes);
    const masked = fields.filter((f) => maskedIn(entry, f, config.mask ?? []));
    if (masked.length > 0) {
      throw refuse(id, `field(s) ${masked.join(', ')} of ${name} are masked in the log, so their previous values are unknown`);
    }
    const columns = new Set(catalog.columns.map((c) => c.name));
    const excluded = fields.filter((f) =>
      !columns.has(f) || (config.exclude ?? []).includes(f) || (config.include !== undefined && !config.include.includes(f)));
    if (excluded.length > 0) {
      throw refuse(id, `field(s) ${excluded.join(', ')} of ${name} are excluded from auditing now or no longer exist`);
    }
    const pk = config.primaryKey && config.primaryKey.length > 0 ? config.primaryKey : catalog.primaryKey;
    if (pk.length === 0) throw refuse(id, `${name} has no primary key to find the row by`);

    const target = qualified(table);
    const cols = fields.map(quoteIdent);
    const pkCols = pk.map(quoteIdent);
    const compareAs = new Map(catalog.columns.map((c) => [c.name, c.compareAs]));
    // The row as the entry left it: unless forced, every reverted column must still hold the
    // entry's new value, or a later change would be silently overwritten. Compared as typed
    // values (as the trigger compares them), not as JSON text, which depends on settings such
    // as TimeZone.
    const unchanged = options.force ? [] : fields.map((f) =>
      `NOT ${changedExpression(`t.${quoteIdent(f)}`, `n.${quoteIdent(f)}`, compareAs.get(f))}`);
    const keyJson = `(SELECT CASE WHEN cardinality($2::text[]) = 1 THEN jsonb_build_object($2[1], e.object_pk)
                       ELSE (SELECT jsonb_object_agg(c.col, k.value)
                             FROM jsonb_array_elements(e.object_pk::jsonb) WITH ORDINALITY AS k(value, ord)
                             JOIN unnest($2::text[]) WITH ORDINALITY AS c(col, ord) USING (ord)) END FROM e)`;
    const values: unknown[] = [id, pk];
    // Old ([0]) and new ([1]) values become typed records of the table inside PostgreSQL.
    const valuesAt = (i: 0 | 1) =>
      `jsonb_populate_record(NULL::${target}, (SELECT jsonb_object_agg(c.key, c.value -> ${i}) FROM e, jsonb_each(e.changes) AS c))`;
    const sql = `
WITH e AS (SELECT changes, object_pk FROM ${schema}.log_entry WHERE id = $1::bigint)
UPDATE ${target} AS t
SET (${cols.join(', ')}) = (SELECT ${fields.map((f) => `o.${quoteIdent(f)}`).join(', ')} FROM ${valuesAt(0)} AS o)
FROM ${valuesAt(1)} AS n
WHERE (${pkCols.map((c) => `t.${c}`).join(', ')}) = (
  SELECT ${pkCols.map((c) => `k.${c}`).join(', ')} FROM jsonb_populate_record(NULL::${target}, ${keyJson}) AS k)
${unchanged.map((u) => `  AND ${u}`).join('\n')}
RETURNING 1`;
    const result = await client.query(sql, values);
    if (result.rowCount === 0) {
      const { rows } = await client.query(
        `WITH e AS (SELECT object_pk FROM ${schema}.log_entry WHERE id = $1::bigint)
         SELECT 1 FROM ${target} AS t WHERE (${pkCols.map((c) => `t.${c}`).join(', ')}) = (
           SELECT ${pkCols.map((c) => `k.${c}`).join(', ')} FROM jsonb_populate_record(NULL::${target}, ${keyJson}) AS k)`,
        [id, pk],
      );
      if (rows.length === 0) throw new AuditLogError('NOT_FOUND', `cannot revert entry ${id}: ${name} row ${entry.object_pk} no longer exists`);
      throw new AuditLogError('REVERT_CONFLICT',
        `cannot revert entry ${id}: ${name} row ${entry.object_pk} changed again after it; revert the later entries first, or pass force: true to overwrite`);
    }
    return { table: name, objectPk: entry.object_pk, fields };
  });
}

function maskedIn(entry: LogEntry, field: string, mask: string[]): boolean {
  const pair = entry.changes?.[field];
  return mask.includes(field) || (Array.isArray(pair) && (pair[0] === MASK || pair[1] === MASK));
}
