// Partitioned tables: every write aimed at any level of the tree is captured exactly once and
// logged under the table the user registered, in both modes; rows moved between partitions are
// one update; old and new images are never paired across rows; partitions added later are
// captured (DDL watch) or reported; a renamed table's entries carry its new name.
import { status } from '../src/install';
import type { AuditConfig, CaptureMode, LogEntry } from '../src/interfaces';
import { generatedName } from '../src/ident';
import { createTestDatabase, type TestDatabase } from './helpers';
import { asRole, createLoginRole, dropRoles, roleName, sqlState } from './security-helpers';

let db: TestDatabase;
const roles: string[] = [];
beforeAll(async () => {
  db = await createTestDatabase('partitions');
});
afterAll(async () => {
  await db.drop();
  await dropRoles(roles);
});

const brief = (e: LogEntry) => [e.table_name, e.action, e.object_pk, e.changes];

/** p (LIST by region): p_eu, and p_us (RANGE by id): p_us_lo, p_us_hi. */
async function tree(p: string): Promise<void> {
  await db.sql(`
    CREATE TABLE ${p} (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
    CREATE TABLE ${p}_eu PARTITION OF ${p} FOR VALUES IN ('eu');
    CREATE TABLE ${p}_us PARTITION OF ${p} FOR VALUES IN ('us') PARTITION BY RANGE (id);
    CREATE TABLE ${p}_us_lo PARTITION OF ${p}_us FOR VALUES FROM (0) TO (100);
    CREATE TABLE ${p}_us_hi PARTITION OF ${p}_us FOR VALUES FROM (100) TO (MAXVALUE);`);
}

const since = async (id: number) => db.entries('id > $1', [id]);
const lastId = async () => Number((await db.sql('SELECT coalesce(max(id), 0) AS id FROM auditlog.log_entry'))[0].id);

describe.each<CaptureMode>(['row', 'statement'])('%s mode', (mode) => {
  const p = `p_${mode}`;
  const config: AuditConfig = { tables: { [`public.${p}`]: { mode } } };
  const stateOf = async (cfg = config) =>
    (await db.withClient((c) => status(c, cfg))).tables.find((t) => t.table === `public.${p}`);

  beforeAll(async () => {
    await tree(p);
    await db.install(config);
  });

  test('writes aimed at the table, a partition or a sub-partition are each logged once, under the table', async () => {
    const from = await lastId();
    await db.sql(`INSERT INTO ${p}_eu VALUES (1, 'eu', 'a')`);
    await db.sql(`INSERT INTO ${p} VALUES (2, 'us', 'b')`);
    await db.sql(`INSERT INTO ${p}_us_lo VALUES (3, 'us', 'c')`);
    await db.sql(`INSERT INTO ${p}_us VALUES (150, 'us', 'd')`);
    await db.sql(`UPDATE ${p}_eu SET v = 'a2'`);
    await db.sql(`UPDATE ${p}_us_lo SET v = 'c2' WHERE id = 3`);
    await db.sql(`UPDATE ${p} SET v = 'd2' WHERE id = 150`);
    await db.sql(`DELETE FROM ${p}_us_hi`);
    await db.sql(`DELETE FROM ${p}_us WHERE id = 2`);
    expect((await since(from)).map(brief)).toEqual([
      [p, 'insert', '[1, "eu"]', { id: [null, 1], region: [null, 'eu'], v: [null, 'a'] }],
      [p, 'insert', '[2, "us"]', { id: [null, 2], region: [null, 'us'], v: [null, 'b'] }],
      [p, 'insert', '[3, "us"]', { id: [null, 3], region: [null, 'us'], v: [null, 'c'] }],
      [p, 'insert', '[150, "us"]', { id: [null, 150], region: [null, 'us'], v: [null, 'd'] }],
      [p, 'update', '[1, "eu"]', { v: ['a', 'a2'] }],
      [p, 'update', '[3, "us"]', { v: ['c', 'c2'] }],
      [p, 'update', '[150, "us"]', { v: ['d', 'd2'] }],
      [p, 'delete', '[150, "us"]', { id: [150, null], region: ['us', null], v: ['d2', null] }],
      [p, 'delete', '[2, "us"]', { id: [2, null], region: ['us', null], v: ['b', null] }],
    ]);
    await db.sql(`DELETE FROM ${p}`);
  });

  test('TRUNCATE of a partition logs the rows it removed; of the table, one truncate entry', async () => {
    await db.sql(`INSERT INTO ${p} VALUES (1, 'eu', 'a'), (2, 'us', 'b'), (150, 'us', 'c')`);
    let from = await lastId();
    await db.sql(`TRUNCATE ${p}_eu`);
    expect((await since(from)).map(brief)).toEqual([
      [p, 'delete', '[1, "eu"]', { id: [1, null], region: ['eu', null], v: ['a', null] }],
    ]);
    from = await lastId();
    await db.sql(`TRUNCATE ${p}_us`); // a partitioned partition: its sub-partitions' rows, once each
    expect((await since(from)).map((e) => [e.action, e.object_pk]).sort()).toEqual([['delete', '[150, "us"]'], ['delete', '[2, "us"]']]);
    await db.sql(`INSERT INTO ${p} VALUES (1, 'eu', 'a'), (2, 'us', 'b')`);
    from = await lastId();
    await db.sql(`TRUNCATE ${p}`);
    expect((await since(from)).map(brief)).toEqual([[p, 'truncate', null, null]]);
    // A partition named before its table: its rows as deletes, then the table's truncate.
    await db.sql(`INSERT INTO ${p} VALUES (1, 'eu', 'a'), (2, 'us', 'b')`);
    from = await lastId();
    await db.sql(`TRUNCATE ${p}_us_lo, ${p}`);
    expect((await since(from)).map(brief)).toEqual([
      [p, 'delete', '[2, "us"]', { id: [2, null], region: ['us', null], v: ['b', null] }],
      [p, 'truncate', null, null],
    ]);
    // The statement's bookkeeping is gone: a later TRUNCATE of a partition in the same
    // transaction is recorded.
    await db.sql(`INSERT INTO ${p} VALUES (5, 'eu', 'e')`);
    from = await lastId();
    await db.sql(`BEGIN; TRUNCATE ${p}; INSERT INTO ${p} VALUES (6, 'eu', 'f'); TRUNCATE ${p}_eu; COMMIT;`);
    expect((await since(from)).map((e) => [e.action, e.object_pk])).toEqual([['truncate', null], ['insert', '[6, "eu"]'], ['delete', '[6, "eu"]']]);
  });

  test('the app cannot mark a partition as covered to hide its TRUNCATE', async () => {
    const app = roleName(db, `app_${mode}`);
    roles.push(app);
    await createLoginRole(app);
    await db.sql(`GRANT USAGE ON SCHEMA auditlog TO "${app}"; GRANT TRUNCATE ON ${p}_eu TO "${app}"`);
    await db.sql(`INSERT INTO ${p} VALUES (7, 'eu', 'g')`);
    const from = await lastId();
    await asRole(db, app, async (c) => {
      expect(await sqlState(c, `INSERT INTO auditlog.truncate_cover (relid) VALUES ('${p}_eu'::regclass)`)).toBe('42501');
      await c.query(`TRUNCATE ${p}_eu`);
    });
    expect((await since(from)).map((e) => [e.action, e.object_pk, e.db_user])).toEqual([['delete', '[7, "eu"]', app]]);
  });

  test('a row moved to another partition is one update, under its new key', async () => {
    await db.sql(`INSERT INTO ${p} VALUES (10, 'eu', 'x'), (11, 'eu', 'y')`);
    const from = await lastId();
    await db.sql(`UPDATE ${p} SET region = 'us', v = v || '!' WHERE id = 10`);
    await db.sql(`UPDATE ${p}_us SET id = 120 WHERE id = 10`); // between sub-partitions
    expect((await since(from)).map(brief)).toEqual([
      [p, 'update', '[10, "us"]', { region: ['eu', 'us'], v: ['x', 'x!'] }],
      [p, 'update', '[120, "us"]', { id: [10, 120] }],
    ]);
    await db.sql(`DELETE FROM ${p}`);
  });

  test('a partition created or attached after install is captured; a detached one no longer is', async () => {
    await db.sql(`CREATE TABLE ${p}_asia PARTITION OF ${p} FOR VALUES IN ('asia')`);
    await db.sql(`CREATE TABLE ${p}_sa (LIKE ${p})`);
    await db.sql(`ALTER TABLE ${p} ATTACH PARTITION ${p}_sa FOR VALUES IN ('sa')`);
    expect(await stateOf()).toEqual({ table: `public.${p}`, state: 'installed' });
    const from = await lastId();
    await db.sql(`INSERT INTO ${p}_asia VALUES (20, 'asia', 'x')`);
    await db.sql(`INSERT INTO ${p}_sa VALUES (21, 'sa', 'y')`);
    await db.sql(`TRUNCATE ${p}_sa`);
    await db.sql(`ALTER TABLE ${p} DETACH PARTITION ${p}_asia`);
    await db.sql(`INSERT INTO ${p}_asia VALUES (22, 'asia', 'z')`); // no longer part of p
    expect((await since(from)).map((e) => [e.table_name, e.action, e.object_pk])).toEqual([
      [p, 'insert', '[20, "asia"]'], [p, 'insert', '[21, "sa"]'], [p, 'delete', '[21, "sa"]'],
    ]);
    expect(await stateOf()).toEqual({ table: `public.${p}`, state: 'installed' });
    await db.sql(`DROP TABLE ${p}_asia, ${p}_sa`);
  });

  test('without the DDL watch, a new partition is reported as missing capture until install', async () => {
    const watch = generatedName('auditlog', 'tables', 'auditlog');
    await db.sql(`ALTER EVENT TRIGGER ${watch} DISABLE`);
    try {
      await db.sql(`CREATE TABLE ${p}_af PARTITION OF ${p} FOR VALUES IN ('af')`);
    } finally {
      await db.sql(`ALTER EVENT TRIGGER ${watch} ENABLE`);
    }
    const report = await db.withClient((c) => status(c, config));
    expect(report.drift).toBe(true); // `auditlog status` exits 1
    expect(report.tables.find((t) => t.table === `public.${p}`)).toEqual({
      table: `public.${p}`, state: 'outdated', detail: expect.stringContaining(`partition public.${p}_af has no capture`),
    });
    await db.install(config);
    expect(await stateOf()).toEqual({ table: `public.${p}`, state: 'installed' });
    const from = await lastId();
    await db.sql(`INSERT INTO ${p}_af VALUES (30, 'af', 'x')`);
    expect((await since(from)).map((e) => [e.table_name, e.action])).toEqual([[p, 'insert']]);
    await db.sql(`DROP TABLE ${p}_af`);
  });
});

describe.each<CaptureMode>(['row', 'statement'])('pairing, %s mode', (mode) => {
  // The case: pm_b drops "skip…" rows arriving by row movement.
  const pm = `pm_${mode}`;
  beforeAll(async () => {
    await db.sql(`
      CREATE TABLE ${pm} (id int NOT NULL, region text NOT NULL, v text) PARTITION BY LIST (region);
      CREATE TABLE ${pm}_a PARTITION OF ${pm} FOR VALUES IN ('a');
      CREATE TABLE ${pm}_b PARTITION OF ${pm} FOR VALUES IN ('b');
      CREATE FUNCTION ${pm}_skip() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.v LIKE 'skip%' THEN RETURN NULL; END IF; RETURN NEW; END $$;
      CREATE TRIGGER skip BEFORE INSERT ON ${pm}_b FOR EACH ROW EXECUTE FUNCTION ${pm}_skip();
      CREATE TABLE ${pm}k (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
      CREATE TABLE ${pm}k_a PARTITION OF ${pm}k FOR VALUES IN ('a');
      CREATE TABLE ${pm}k_b PARTITION OF ${pm}k FOR VALUES IN ('b');
      CREATE TRIGGER skip BEFORE INSERT ON ${pm}k_b FOR EACH ROW EXECUTE FUNCTION ${pm}_skip();`);
    await db.install({ tables: { [`public.${pm}`]: { mode, primaryKey: ['id'] }, [`public.${pm}k`]: { mode } } });
  });

  test('a row dropped during row movement is a delete; the others keep their own images', async () => {
    await db.sql(`INSERT INTO ${pm} VALUES (11, 'a', 'one'), (12, 'a', 'skip'), (13, 'a', 'three')`);
    const from = await lastId();
    await db.sql(`UPDATE ${pm} SET region = 'b', v = v || '-moved' WHERE id > 10`);
    expect((await since(from)).map(brief).sort()).toEqual([
      [pm, 'delete', '12', { id: [12, null], region: ['a', null], v: ['skip', null] }],
      [pm, 'update', '11', { region: ['a', 'b'], v: ['one', 'one-moved'] }],
      [pm, 'update', '13', { region: ['a', 'b'], v: ['three', 'three-moved'] }],
    ]);
  });

  test('when the key itself changed, unpaired images are logged as the delete and insert they are', async () => {
    await db.sql(`INSERT INTO ${pm}k VALUES (11, 'a', 'one'), (12, 'a', 'skip'), (13, 'a', 'three')`);
    const from = await lastId();
    await db.sql(`UPDATE ${pm}k SET region = 'b', v = v || '-moved' WHERE id > 10`);
    const entries = await since(from);
    expect(entries.map((e) => [e.action, e.object_pk]).sort()).toEqual([
      ['delete', '[11, "a"]'], ['delete', '[12, "a"]'], ['delete', '[13, "a"]'],
      ['insert', '[11, "b"]'], ['insert', '[13, "b"]'],
    ]);
    // Never one row's old image with another's new one.
    for (const e of entries) {
      const id = JSON.parse(e.object_pk!)[0];
      expect(Object.values(e.changes!).flat().filter((x) => typeof x === 'number')).toEqual([id]);
    }
  });
});

describe.each<CaptureMode>(['row', 'statement'])('renamed tables, %s mode', (mode) => {
  const s = `s_${mode}`;
  const q = `q_${mode}`;
  beforeAll(async () => {
    await db.sql(`CREATE TABLE ${s} (id int PRIMARY KEY, v text);
      CREATE TABLE ${q} (id int, k text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
      CREATE TABLE ${q}_x PARTITION OF ${q} FOR VALUES IN ('x');`);
    await db.install({ tables: { [`public.${s}`]: { mode }, [`public.${q}`]: { mode } } });
  });

  test('entries written after a rename carry the new name; install with the new name takes over', async () => {
    await db.sql(`INSERT INTO ${s} VALUES (1, 'a')`);
    const from = await lastId();
    await db.sql(`ALTER TABLE ${s} RENAME TO ${s}_renamed`);
    await db.sql(`ALTER TABLE ${q} RENAME TO ${q}_renamed`);
    await db.sql(`UPDATE ${s}_renamed SET v = 'b'`);
    await db.sql(`INSERT INTO ${q}_x VALUES (1, 'x')`);
    const entries = await since(from);
    expect(entries.map((e) => [e.table_name, e.action])).toEqual([
      [`${s}_renamed`, 'ddl'], [`${q}_renamed`, 'ddl'], [`${s}_renamed`, 'update'], [`${q}_renamed`, 'insert'],
    ]);
    expect(entries[0]!.additional_data).toMatchObject({ event: 'renamed', renamed_from: { table_schema: 'public', table_name: s } });
    const tracked = await db.sql(`SELECT table_name FROM auditlog.tracked_table WHERE table_name LIKE '%\\_${mode}\\_renamed' ORDER BY 1`);
    expect(tracked.map((r) => r.table_name)).toEqual([`${q}_renamed`, `${s}_renamed`]);

    const renamed: AuditConfig = { tables: { [`public.${s}_renamed`]: { mode }, [`public.${q}_renamed`]: { mode } } };
    await db.install(renamed);
    const report = await db.withClient((c) => status(c, renamed));
    expect(report.tables.filter((t) => t.table.endsWith(`_${mode}_renamed`)).map((t) => [t.table, t.state]))
      .toEqual([[`public.${q}_renamed`, 'installed'], [`public.${s}_renamed`, 'installed']]);
    const after = await lastId();
    await db.sql(`DELETE FROM ${s}_renamed`);
    expect((await since(after)).map((e) => [e.table_name, e.action])).toEqual([[`${s}_renamed`, 'delete']]);
  });
});

test('a partition cannot be registered on its own: its table captures it', async () => {
  await db.sql('CREATE TABLE solo (id int PRIMARY KEY, k text) PARTITION BY RANGE (id); CREATE TABLE solo_1 PARTITION OF solo FOR VALUES FROM (0) TO (10)');
  await expect(db.install({ tables: { 'public.solo_1': {} } })).rejects.toThrow(/solo_1 is a partition; audit the partitioned table/);
});
