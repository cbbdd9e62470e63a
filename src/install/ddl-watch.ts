// The DDL watch: event triggers that keep capture working when audited tables change.
// - ALTER TABLE changing an audited table's columns: fall_back_after_ddl (sql/, migration 1).
// - CREATE TABLE / ALTER TABLE adding, attaching or detaching partitions of an audited
//   partitioned table, or renaming an audited table: follow_table_ddl (sql/, partitions).
// Event triggers need a superuser.
import type { ClientBase } from 'pg';
import { generatedName, quoteIdent } from '../ident';

function watches(schema: string): Array<{ name: string; tags: string; fn: string }> {
  return [
    { name: generatedName('auditlog', 'ddl', schema), tags: `'ALTER TABLE'`, fn: 'fall_back_after_ddl' },
    { name: generatedName('auditlog', 'tables', schema), tags: `'CREATE TABLE', 'ALTER TABLE'`, fn: 'follow_table_ddl' },
  ];
}

async function missingWatches(client: ClientBase, schema: string) {
  const all = watches(schema);
  const { rows } = await client.query<{ evtname: string }>(
    'SELECT evtname FROM pg_catalog.pg_event_trigger WHERE evtname = ANY($1::text[])', [all.map((w) => w.name)]);
  return all.filter((w) => !rows.some((r) => r.evtname === w.name));
}

export async function ddlWatchInstalled(client: ClientBase, schema: string): Promise<boolean> {
  return (await missingWatches(client, schema)).length === 0;
}

/** Creates the watch if missing. Returns false when the current role may not (not a superuser). */
export async function ensureDdlWatch(client: ClientBase, schema: string): Promise<boolean> {
  const missing = await missingWatches(client, schema);
  if (missing.length === 0) return true;
  const { rows } = await client.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user');
  if (!rows[0]?.rolsuper) return false;
  for (const w of missing) {
    await client.query(`CREATE EVENT TRIGGER ${quoteIdent(w.name)} ON ddl_command_end
  WHEN TAG IN (${w.tags}) EXECUTE FUNCTION ${quoteIdent(schema)}.${quoteIdent(w.fn)}()`);
  }
  return true;
}

export async function dropDdlWatch(client: ClientBase, schema: string): Promise<void> {
  for (const w of watches(schema)) await client.query(`DROP EVENT TRIGGER IF EXISTS ${quoteIdent(w.name)}`);
}
