// Casts a non-superuser defined from a type that an audited table uses to json or jsonb.
// Capture never calls them (such types are serialised by their output function, see
// docs/capture-types.md), but a cast like that is how table owners' code was made to run
// inside capture before, and to_jsonb() anywhere else still calls it: status reports it.
import type { ClientBase } from 'pg';
import { readUserJsonCasts } from '../catalog';
import { quoteIdent } from '../ident';

export async function castProblems(client: ClientBase, schema: string): Promise<string[]> {
  const { rows: [found] } = await client.query<{ ok: boolean }>(
    'SELECT pg_catalog.to_regclass($1) IS NOT NULL AS ok', [`${quoteIdent(schema)}.tracked_table`]);
  if (!found?.ok) return [];
  return (await readUserJsonCasts(client, schema)).map((c) =>
    `${c.table}: cast (${c.source} AS ${c.target}) runs ${c.function}, owned by "${c.owner}", not a superuser: ` +
    `code of that role's runs wherever a value of ${c.source} is turned into JSON. Unless you made it on purpose, ` +
    `DROP CAST (${c.source} AS ${c.target}) and check what it did`);
}
