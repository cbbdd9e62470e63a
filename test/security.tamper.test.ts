// Tamper evidence: a superuser edits, deletes or inserts log entries out of band, or rewrites
// the chain; `verify` finds it. Sealing never makes writers wait.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { install } from '../src/install';
import { seal, verify } from '../src/security/verify';
import { createTestDatabase, type TestDatabase } from './helpers';
import { runCli } from './security-helpers';

let db: TestDatabase;
let dir: string;
const config = { tables: { 'public.notes': {} }, tamperEvidence: true };

beforeAll(async () => {
  db = await createTestDatabase('sec_tamper');
  await db.sql('CREATE TABLE notes (id int PRIMARY KEY, body text)');
  await db.install(config);
  dir = mkdtempSync(path.join(os.tmpdir(), 'auditlog-verify-'));
  writeFileSync(path.join(dir, 'auditlog.config.json'), JSON.stringify(config));
});

afterAll(() => db.drop());

beforeEach(() => db.sql('TRUNCATE notes; TRUNCATE auditlog.log_entry, auditlog.entry_seal, auditlog.seal_batch'));

const check = (options = {}) => db.withClient((c) => verify(c, config, options));

/**
 * Verifies until every entry is sealed. The sealing horizon is the oldest transaction running
 * anywhere in the cluster, so other test files' transactions can hold it back for a moment.
 */
async function sealEverything() {
  for (let i = 0; ; i++) {
    const report = await check();
    const [{ n }] = await db.sql('SELECT count(*)::int AS n FROM auditlog.log_entry');
    if (report.sealedTotal >= n || i === 200) return report;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function writeNotes(ids: number[]): Promise<string[]> {
  for (const id of ids) await db.sql(`INSERT INTO notes VALUES ($1::int, 'note ' || $1::text)`, [id]);
  return (await db.entries()).map((e) => e.id);
}

test('an untouched log verifies intact; entries are sealed once', async () => {
  await writeNotes([1, 2, 3]);
  const first = await sealEverything();
  expect(first).toMatchObject({ sealedTotal: 3, problems: [], intact: true });
  expect(first.head).toMatch(/^\d+:[0-9a-f]{64}$/);
  await writeNotes([4]);
  expect(await sealEverything()).toMatchObject({ sealedTotal: 4, intact: true });
  expect(await check({ anchor: first.head })).toMatchObject({ sealedNow: 0, sealedTotal: 4, intact: true });
});

test('edited, deleted and inserted-out-of-band entries are reported by id', async () => {
  const [a, b, c] = await writeNotes([1, 2, 3]);
  await sealEverything();
  await db.sql(`
    UPDATE auditlog.log_entry SET actor = 'someone else' WHERE id = ${a};
    DELETE FROM auditlog.log_entry WHERE id = ${b};
    -- a forged entry, back-dated into a transaction that was already sealed
    INSERT INTO auditlog.log_entry (id, txid, action, db_user, table_name)
      OVERRIDING SYSTEM VALUE
      SELECT 900000, txid, 'delete', 'alice', 'notes' FROM auditlog.log_entry WHERE id = ${c};
  `);
  const report = await check();
  expect(report.intact).toBe(false);
  expect(report.problems.map((p) => [p.entryId, p.problem.split(':')[0]])).toEqual([
    [a, 'edited'], [b, 'deleted'], ['900000', 'inserted'],
  ]);
});

test('deleting an entry together with its seal breaks the chain of its batch', async () => {
  const [, b] = await writeNotes([1, 2, 3]);
  await sealEverything();
  await db.sql(`DELETE FROM auditlog.log_entry WHERE id = ${b}; DELETE FROM auditlog.entry_seal WHERE id = ${b}`);
  const report = await check();
  expect(report.problems).toEqual([expect.objectContaining({ entryId: null, problem: expect.stringMatching(/^batch \d+: chain broken/) })]);
});

test('a chain recomputed end to end by a superuser is caught by the anchor kept outside', async () => {
  const [a] = await writeNotes([1, 2]);
  const { head } = await sealEverything();
  await db.sql(`
    UPDATE auditlog.log_entry SET changes = '{"body": [null, "rewritten"]}' WHERE id = ${a};
    UPDATE auditlog.entry_seal s SET digest = auditlog.entry_digest(e) FROM auditlog.log_entry e WHERE e.id = s.id;
    DO $$ DECLARE b auditlog.seal_batch; prev bytea; BEGIN
      FOR b IN SELECT * FROM auditlog.seal_batch ORDER BY batch LOOP
        UPDATE auditlog.seal_batch SET digest = auditlog.batch_digest(prev, b) WHERE batch = b.batch RETURNING digest INTO prev;
      END LOOP; END $$;
  `);
  expect(await check()).toMatchObject({ intact: true });
  const anchored = await check({ anchor: head });
  expect(anchored.intact).toBe(false);
  expect(anchored.problems[0]!.problem).toMatch(/^anchor: batch \d+ has digest .*: the chain was rewritten/);
});

test('an entry that commits after a later-numbered one is sealed when it commits, never reported', async () => {
  const early = new Client(db.url);
  await early.connect();
  try {
    await early.query('BEGIN');
    await early.query(`INSERT INTO notes VALUES (1, 'slow transaction')`); // lower id, commits last
    await writeNotes([2]);
    // The open writer does not block sealing, and its entry is not sealed yet.
    expect(await db.withClient((c) => seal(c, config))).toBe(0);
    await early.query('COMMIT');
  } finally {
    await early.end();
  }
  expect(await sealEverything()).toMatchObject({ sealedTotal: 2, intact: true });
});

test('writers never wait for a sealer holding its lock', async () => {
  await writeNotes([1]);
  const sealer = new Client(db.url);
  await sealer.connect();
  try {
    await sealer.query('BEGIN');
    await sealer.query('SELECT auditlog.seal()');
    await db.withClient(async (c) => {
      await c.query(`SET lock_timeout = '2s'`);
      await c.query(`INSERT INTO notes VALUES (2, 'while sealing')`);
    });
    await sealer.query('COMMIT');
  } finally {
    await sealer.end();
  }
  expect(await sealEverything()).toMatchObject({ sealedTotal: 2, intact: true });
});

test('verify before install, or with tamperEvidence off, says what to do', async () => {
  await expect(db.withClient((c) => verify(c, { ...config, schema: 'never_installed' }))).rejects.toMatchObject({
    code: 'TAMPER_EVIDENCE_DISABLED', message: expect.stringContaining('run auditlog install'),
  });
  await expect(db.withClient((c) => verify(c, { tables: config.tables }))).rejects.toMatchObject({
    code: 'TAMPER_EVIDENCE_DISABLED', message: expect.stringContaining('"tamperEvidence": true'),
  });
  await expect(db.withClient((c) => verify(c, config, { anchor: 'latest' }))).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
});

test('auditlog verify: exit 0 when intact, 1 with the broken ids or a dropped trigger, 2 when off', async () => {
  const [a] = await writeNotes([1, 2]);
  await sealEverything();
  const env = { DATABASE_URL: db.url };
  const ok = await runCli(['verify'], dir, env);
  expect(ok).toMatchObject({ code: 0, stdout: expect.stringContaining('intact') });

  await db.sql(`UPDATE auditlog.log_entry SET actor = 'x' WHERE id = ${a}`);
  const broken = await runCli(['verify'], dir, env);
  expect(broken.code).toBe(1);
  expect(broken.stdout).toContain(`entry ${a}: edited`);
  expect(broken.stdout).toContain(`BROKEN: entries ${a}`);

  await db.sql(`UPDATE auditlog.log_entry SET actor = NULL WHERE id = ${a}`);
  const [{ tgname }] = await db.sql(`SELECT tgname FROM pg_trigger WHERE tgrelid = 'notes'::regclass AND tgname LIKE 'auditlog\\_insert%'`);
  await db.sql(`DROP TRIGGER "${tgname}" ON notes`);
  try {
    const dropped = await runCli(['verify', '--json'], dir, env);
    expect(dropped.code).toBe(1);
    expect(JSON.parse(dropped.stdout)).toMatchObject({ problems: [], status: { drift: true, tables: [{ table: 'public.notes', state: 'outdated' }] } });
  } finally {
    await db.withClient((c) => install(c, config));
  }

  writeFileSync(path.join(dir, 'off.json'), JSON.stringify({ tables: config.tables }));
  const off = await runCli(['verify', '--config', 'off.json'], dir, env);
  expect(off.code).toBe(2);
  expect(off.stderr).toContain('tamper evidence is off');
});
