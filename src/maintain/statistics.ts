// Statistics for the expressions the actor and correlation-id lookups search by. Their indexes
// are partial (`WHERE actor IS NOT NULL`), and PostgreSQL keeps no statistics for the
// expression of a partial index: it guesses that `left(cid, 200) = …` matches 0.5 % of a
// table. On 50,000,000 entries that guess made a correlation-id lookup a parallel plan over
// every partition (300 ms instead of 1 ms). An extended statistics object per leaf table
// (statistics are not inherited by partitions) gives ANALYZE the expression's real spread.
import type { ClientBase } from 'pg';
import { generatedName, quoteIdent } from '../ident';
import { leavesOf, qualifiedLog, readLogTree } from './tree';

/** [name part, expression]: the expressions of sql/3_history.sql's partial indexes. */
const LOOKUP_EXPRESSIONS: Array<[string, string]> = [
  ['actor', 'left(actor, 200)'],
  ['cid', 'left(cid, 200)'],
];

/**
 * Creates the missing statistics objects on every leaf of the log, in the caller's
 * transaction. Returns the leaves that got one and already hold entries: give them to
 * analyzeLeaves() after the transaction (autovacuum may never analyze an old partition again,
 * and a new, empty one gets its statistics from autovacuum as it fills).
 */
export async function ensureLookupStatistics(client: ClientBase, schema: string): Promise<string[]> {
  const toAnalyze: string[] = [];
  for (const leaf of leavesOf(await readLogTree(client, schema))) {
    const table = qualifiedLog(schema, leaf.name);
    // What the leaf has, by expression (a renamed leaf, such as log_entry_legacy, keeps its own).
    const { rows: [have] } = await client.query<{ expressions: string[]; pages: number }>(
      `SELECT ARRAY(SELECT pg_catalog.array_to_string(pg_catalog.pg_get_statisticsobjdef_expressions(s.oid), ',')
                    FROM pg_catalog.pg_statistic_ext s WHERE s.stxrelid = c.oid) AS expressions,
              c.relpages AS pages
       FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)`, [table]);
    if (!have) continue;
    let created = false;
    for (const [part, expression] of LOOKUP_EXPRESSIONS) {
      if (have.expressions.some((e) => e.includes(`(${part}, 200)`))) continue;
      const name = generatedName('auditlog', `${leaf.name}_${part}`, `${schema}.${leaf.name}.${part}`);
      await client.query(`CREATE STATISTICS IF NOT EXISTS ${quoteIdent(schema)}.${quoteIdent(name)} ON (${expression}) FROM ${table}`);
      created = true;
    }
    if (created && have.pages > 0) toAnalyze.push(leaf.name);
  }
  return toAnalyze;
}

/**
 * ANALYZE of each leaf, one statement each, outside the transaction that made the statistics:
 * it samples the leaf (seconds on a big one), and must not hold install's or maintain's locks
 * meanwhile. It takes a lock that writers do not wait for.
 */
export async function analyzeLeaves(client: ClientBase, schema: string, leaves: string[], log: (line: string) => void): Promise<void> {
  for (const leaf of leaves) {
    const start = Date.now();
    await client.query(`ANALYZE ${qualifiedLog(schema, leaf)}`);
    log(`analyzed ${qualifiedLog(schema, leaf)} for its new lookup statistics (${((Date.now() - start) / 1000).toFixed(1)} s)`);
  }
}
