// Object keys as capture writes them. object_pk is rendered the same from every session (see
// KeyForm in src/catalog), so a lookup renders the key it is given the same way: cast to the
// key columns' types and formatted by the generator's own expressions. '2022-03-17 01:00+01',
// '2022-03-17T00:00:00Z' and a Date-like ISO string of the same instant all find one object.
import type { KeyForm } from '../catalog';
import { keyPartExpression } from '../generate';
import type { HistoryQuery, ObjectKey } from '../interfaces';
import { isPool, prepared } from '../db';
import { parseTable, schemaOf, type Db } from './common';

interface KeyColumns {
  types: string[];
  forms: KeyForm[];
}

/** The key columns of an installed table (types as format_type gives them), or null. */
async function keyColumns(db: Db, schema: string, table: { schema: string; name: string }): Promise<KeyColumns | null> {
  // No audit schema (or an old one): nothing to render by; the lookup itself says what is missing.
  const { rows: [found] } = await db.query<{ ok: boolean }>(
    prepared('SELECT pg_catalog.to_regclass($1) IS NOT NULL AS ok', [`${schema}.tracked_table`]));
  if (!found?.ok) return null;
  const { rows: [row] } = await db.query<{ types: Array<string | null> | null; forms: KeyForm[] | null }>(prepared(
    `SELECT (SELECT array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY k.ord)
             FROM jsonb_array_elements_text(t.config->'primaryKey') WITH ORDINALITY AS k(name, ord)
             LEFT JOIN pg_catalog.pg_attribute a
               ON a.attrelid = pg_catalog.to_regclass(pg_catalog.quote_ident(t.table_schema) || '.' || pg_catalog.quote_ident(t.table_name))
              AND a.attname = k.name AND NOT a.attisdropped) AS types,
            ARRAY(SELECT f FROM jsonb_array_elements_text(t.config->'keyForms') AS f) AS forms
     FROM ${schema}.tracked_table t WHERE t.table_schema = $1 AND t.table_name = $2`,
    [table.schema, table.name]));
  if (!row?.types || row.types.some((t) => t === null) || !row.forms || row.forms.length !== row.types.length) return null;
  return { types: row.types as string[], forms: row.forms };
}

function partText(part: unknown): string | null {
  return part === null || part === undefined ? null : String(part);
}

/** SQL rendering one key (given as text parameters) as object_pk, and its parameters. */
function keySql(columns: KeyColumns, key: ObjectKey, param: (v: unknown) => string): string | null {
  const parts = Array.isArray(key) ? key : [key];
  if (parts.length !== columns.types.length) return null;
  const cast = parts.map((p, i) => `${param(partText(p))}::${columns.types[i]}`);
  if (cast.length === 1) return keyPartExpression(cast[0]!, columns.forms[0], true);
  return `jsonb_build_array(${cast.map((c, i) => keyPartExpression(c, columns.forms[i], false)).join(', ')})::text`;
}

/** The keys rendered, or null when one of them is not a value of its column's type. */
async function render(db: Db, columns: KeyColumns, keys: ObjectKey[]): Promise<Array<string | null> | null> {
  const values: unknown[] = [];
  const param = (v: unknown) => { values.push(v); return `$${values.length}`; };
  const exprs = keys.map((k) => keySql(columns, k, param) ?? 'NULL::text');
  const text = `SELECT ARRAY[${exprs.join(', ')}]::text[] AS keys`;
  // A failed cast must not abort the caller's transaction on a client: inside one, a savepoint
  // contains it (outside one, SAVEPOINT itself fails, harmlessly).
  const savepoint = !isPool(db) && await db.query('SAVEPOINT auditlog_keys').then(() => true, () => false);
  try {
    // Unnamed: its text has one expression per key, so every key count would be a statement of
    // its own kept by each connection, and it reads no table, so there is no planning to save.
    const { rows: [row] } = await db.query<{ keys: Array<string | null> }>(text, values);
    return row!.keys;
  } catch {
    if (savepoint) await db.query('ROLLBACK TO SAVEPOINT auditlog_keys');
    return null;
  } finally {
    if (savepoint) await db.query('RELEASE SAVEPOINT auditlog_keys');
  }
}

/**
 * The query with its objectPk / objectPks in the form capture writes them. A key that does
 * not fit the columns (wrong number of parts, not a value of the type) is kept as given, so
 * it matches what it matched before; so is every key of a table that is not installed.
 */
export async function withCanonicalKeys(db: Db, query: HistoryQuery): Promise<HistoryQuery> {
  const keys = query.objectPk !== undefined ? [query.objectPk] : query.objectPks;
  if (keys === undefined || query.table === undefined) return query;
  const columns = await keyColumns(db, schemaOf(query), parseTable(query.table));
  if (!columns) return query;
  let canonical = await render(db, columns, keys);
  if (!canonical) {
    // One key is not a value of its column's type: render the keys one by one.
    canonical = [];
    for (const k of keys) canonical.push((await render(db, columns, [k]))?.[0] ?? null);
  }
  const out: ObjectKey[] = keys.map((k, i) => canonical[i] ?? k);
  return query.objectPk !== undefined ? { ...query, objectPk: out[0]! } : { ...query, objectPks: out };
}
