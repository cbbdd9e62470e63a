// Every public column of log_entry is sealed: after sealing, an edit of any one column of one
// entry (including turning a NULL into a value) makes `verify` name that entry. The columns
// are read from the catalog, so a column added later is covered, or this test says how.
import { Client } from 'pg';
import { verify } from '../src/security/verify';
import { withAuditSession } from '../src/session';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;
const config = {
  tables: { 'public.notes': { objectRepr: 'title', snapshot: true }, 'public.bare': {} },
  tamperEvidence: true,
};

/** The contract columns (DESIGN.md); more may exist, and they are sealed too. */
const CONTRACT = ['id', 'ts', 'txid', 'table_schema', 'table_name', 'object_pk', 'object_repr', 'action', 'changes',
  'snapshot', 'actor', 'cid', 'remote_addr', 'db_user', 'application_name', 'additional_data', 'tenant_id'];

/** An expression that gives column `c` another value of its type (also when it is NULL). */
const TAMPER: Record<string, (c: string) => string> = {
  bigint: (c) => `${c} + 1`,
  'timestamp with time zone': (c) => `${c} + interval '1 microsecond'`,
  xid8: (c) => `((${c}::text::numeric) + 1)::text::xid8`,
  text: (c) => `coalesce(${c}, '') || '~'`,
  jsonb: (c) => `coalesce(${c}, '{}'::jsonb) || '{"tampered": true}'::jsonb`,
  inet: (c) => `coalesce(${c} + 1, '192.0.2.1'::inet)`,
};

let columns: Array<{ name: string; type: string }>;
let full: string;
let bare: string;

beforeAll(async () => {
  db = await createTestDatabase('sec_seal_columns');
  await db.sql('CREATE TABLE notes (id int PRIMARY KEY, title text, body text); CREATE TABLE bare (id int PRIMARY KEY)');
  await db.install(config);
  const writer = new Client({ connectionString: db.url, application_name: 'seal-columns-test' });
  await writer.connect();
  try {
    await withAuditSession(writer, { actor: 'alice', cid: 'req-1', remoteAddr: '10.1.2.3', data: { why: 'test' }, tenant: 'acme' },
      (c) => c.query(`INSERT INTO notes VALUES (1, 'first', 'body')`));
    await writer.query(`SET application_name = ''`);
    await writer.query('INSERT INTO bare VALUES (1)'); // no context, no repr, no snapshot
  } finally {
    await writer.end();
  }
  [full, bare] = (await db.entries()).map((e) => e.id) as [string, string];
  columns = await db.sql(`SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
                          WHERE attrelid = 'auditlog.log_entry'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`);
  await db.sql('CREATE TABLE saved AS SELECT * FROM auditlog.log_entry');
  for (let i = 0; ; i++) { // the sealing horizon waits for transactions anywhere in the cluster
    const report = await check();
    if (report.sealedTotal === 2 || i === 200) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect((await check()).intact).toBe(true);
});

afterAll(() => db.drop());

/** Statements with the entry id as $1, in one transaction. */
const steps = (texts: string[], id: string) => db.withClient(async (c) => {
  await c.query('BEGIN');
  for (const text of texts) await c.query(text, [id]);
  await c.query('COMMIT');
});

const check = () => db.withClient((c) => verify(c, config));

test('the fixture fills every column of one entry and leaves the nullable ones NULL in another', async () => {
  expect(columns.map((c) => c.name)).toEqual(expect.arrayContaining(CONTRACT));
  const [row] = await db.sql(`SELECT to_jsonb(e) AS j FROM auditlog.log_entry e WHERE id = $1`, [full]);
  expect(Object.entries(row.j).filter(([, v]) => v === null).map(([k]) => k)).toEqual([]);
  for (const { name, type } of columns) {
    if (!(type in TAMPER)) throw new Error(`log_entry.${name} has type ${type}: add a tampering rule for it to TAMPER`);
  }
});

test.each(['full', 'bare'] as const)('editing any single column of the %s entry after sealing makes verify name that entry', async (which) => {
  const id = which === 'full' ? full : bare;
  const missed: string[] = [];
  for (const { name, type } of columns) {
    const col = `"${name}"`;
    if (name === 'id') {
      // An identity column cannot be updated: the same row under another id.
      const rest = columns.slice(1).map((c) => `"${c.name}"`).join(', ');
      await steps([`INSERT INTO auditlog.log_entry OVERRIDING SYSTEM VALUE SELECT id + 1000, ${rest} FROM saved WHERE id = $1`,
        'DELETE FROM auditlog.log_entry WHERE id = $1'], id);
    } else {
      await db.sql(`UPDATE auditlog.log_entry SET ${col} = ${TAMPER[type]!(col)} WHERE id = $1`, [id]);
    }
    const report = await db.withClient((c) => verify(c, config, { seal: false }));
    const named = report.problems.filter((p) => p.entryId === id).map((p) => p.problem.split(':')[0]);
    if (report.intact || named.length !== 1 || named[0] !== (name === 'id' ? 'deleted' : 'edited')) {
      missed.push(`${name}: ${JSON.stringify(report.problems)}`);
    }
    // Restore the entry exactly, and check the log verifies again.
    if (name === 'id') {
      await steps(['DELETE FROM auditlog.log_entry WHERE id = $1 + 1000',
        'INSERT INTO auditlog.log_entry OVERRIDING SYSTEM VALUE SELECT * FROM saved WHERE id = $1'], id);
    } else {
      await db.sql(`UPDATE auditlog.log_entry e SET ${col} = s.${col} FROM saved s WHERE s.id = e.id AND e.id = $1`, [id]);
    }
    const restored = await db.withClient((c) => verify(c, config, { seal: false }));
    expect({ column: name, problems: restored.problems }).toEqual({ column: name, problems: [] });
  }
  expect(missed).toEqual([]);
});
