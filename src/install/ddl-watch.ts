// The DDL watch: an event trigger that keeps capture working after ALTER TABLE changes an
// audited table's columns (see fall_back_after_ddl in sql/). Event triggers need a superuser.
import type { ClientBase } from 'pg';
import { generatedName, quoteIdent } from '../ident';

function watchName(schema: string): string {
  return generatedName('auditlog', 'ddl', schema);
}

export async function ddlWatchInstalled(client: ClientBase, schema: string): Promise<boolean> {
  const { rows } = await client.query('SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = $1', [watchName(schema)]);
  return rows.length > 0;
}

/** Creates the watch if missing. Returns false when the current role may not (not a superuser). */
export async function ensureDdlWatch(client: ClientBase, schema: string): Promise<boolean> {
  if (await ddlWatchInstalled(client, schema)) return true;
  const { rows } = await client.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user');
  if (!rows[0]?.rolsuper) return false;
  await client.query(`CREATE EVENT TRIGGER ${quoteIdent(watchName(schema))} ON ddl_command_end
  WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION ${quoteIdent(schema)}.fall_back_after_ddl()`);
  return true;
}

export async function dropDdlWatch(client: ClientBase, schema: string): Promise<void> {
  await client.query(`DROP EVENT TRIGGER IF EXISTS ${quoteIdent(watchName(schema))}`);
}
