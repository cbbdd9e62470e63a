// The actor and correlation-id lookups search by `left(…, 200)` through partial indexes, whose
// expressions PostgreSQL keeps no statistics for: without the statistics objects install and
// maintain create on every leaf of the log, the planner guesses 0.5 % of a table matches (on
// 50,000,000 entries a correlation-id lookup became a parallel plan over every partition).
import { maintain } from '../src';
import type { AuditConfig } from '../src/interfaces';
import { createTestDatabase, type TestDatabase } from './helpers';

const ENTRIES = 100_000;

async function estimatedRows(db: TestDatabase, where: string): Promise<number> {
  const [{ 'QUERY PLAN': [top] }] = await db.sql(`EXPLAIN (FORMAT JSON) SELECT id FROM auditlog.log_entry WHERE ${where}`);
  return top.Plan['Plan Rows'] as number;
}

describe.each([
  ['a plain log', { tables: { 'public.items': {} } }],
  ['a log partitioned by month', { tables: { 'public.items': {} }, partitioning: { interval: 'month' } }],
] as Array<[string, AuditConfig]>)('%s', (_name, config) => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase(`history_statistics_${config.partitioning ? 'partitioned' : 'plain'}`);
    await db.sql('CREATE TABLE items (id int PRIMARY KEY)');
    await db.install(config);
    // Five entries per cid and 100 per actor, over the last 20 days.
    await db.sql(`
      INSERT INTO auditlog.log_entry (ts, txid, table_schema, table_name, object_pk, action, changes, actor, cid, db_user)
      SELECT now() - (g * interval '17 seconds'), (1000 + g)::text::xid8, 'public', 'items', (g % 5000)::text, 'update',
             '{"n": [1, 2]}', 'user' || (g % 1000), 'req-' || (g / 5), 'app'
      FROM generate_series(1, ${ENTRIES}) AS g`);
    await db.withClient(async (c) => { await maintain(c, config); });
    await db.sql('ANALYZE auditlog.log_entry');
  }, 60_000);

  afterAll(() => db.drop());

  test('every leaf of the log has statistics on the lookup expressions', async () => {
    const rows = await db.sql(`
      SELECT c.relname AS leaf, array_agg(array_to_string(pg_get_statisticsobjdef_expressions(s.oid), ',')) AS exprs
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_statistic_ext s ON s.stxrelid = c.oid
      WHERE n.nspname = 'auditlog' AND c.relkind = 'r' AND (c.relispartition OR c.relname = 'log_entry')
      GROUP BY 1`);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect({ leaf: r.leaf, exprs: [...r.exprs].sort() }).toEqual({ leaf: r.leaf, exprs: ['"left"(actor, 200)', '"left"(cid, 200)'] });
  });

  test('the planner estimates a correlation id and an actor from them, not from a 0.5 % guess', async () => {
    // Five entries share a cid, 100 an actor: the guess would be 500.
    expect(await estimatedRows(db, `left(cid, 200) = 'req-777'`)).toBeLessThan(50);
    expect(await estimatedRows(db, `left(actor, 200) = 'user77'`)).toBeLessThan(400);
  });
});
