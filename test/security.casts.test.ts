// A table owner (not a superuser, not the app) owns the types of its columns, so it can give
// them casts. No such code may run with the audit owner's powers during capture: capture never
// calls a cast of a type that is not built in, and what it runs as may only append to the log.
import type { CaptureMode } from '../src/interfaces';
import { install, status } from '../src/install';
import { WRITER_ROLE } from '../src/security/roles';
import { createTestDatabase, type TestDatabase } from './helpers';
import { asRole, createLoginRole, dropRoles, roleName, sqlState } from './security-helpers';

/**
 * A cast function that tries what the issue's attack did (delete entry 1, grant the app the
 * bypass) and notes, in settings of the writing session, that it ran, as whom, and whether its
 * writes went through. It swallows its own errors, so a write never fails because of it.
 */
function evilBody(app: string, returns: string): string {
  return `
  BEGIN
    PERFORM set_config('evil.ran', current_user, false);
    BEGIN
      DELETE FROM auditlog.log_entry WHERE id = (SELECT min(id) FROM auditlog.log_entry);
      UPDATE auditlog.security_setting SET bypass_role = '${app}';
      PERFORM set_config('evil.wrote', 'yes', false);
    EXCEPTION WHEN others THEN
      PERFORM set_config('evil.wrote', SQLSTATE, false);
    END;
    RETURN ${returns};
  END`;
}

describe.each<CaptureMode>(['row', 'statement'])('%s mode', (mode) => {
  let db: TestDatabase;
  let migrator: string;
  let app: string;
  let owner: string;
  let bypass: string;
  const config = () => ({ mode, tables: { 'public.moods': {} }, roles: { owner, app, bypass } });

  beforeAll(async () => {
    db = await createTestDatabase(`sec_casts_${mode}`);
    [migrator, app, owner, bypass] = ['migrator', 'app', 'owner', 'bypass'].map((s) => roleName(db, s)) as [string, string, string, string];
    await createLoginRole(migrator);
    await createLoginRole(app);
    await db.sql(`GRANT CREATE ON SCHEMA public TO "${migrator}"`);
    await asRole(db, migrator, (c) => c.query(`
      CREATE TYPE mig_enum AS ENUM ('a', 'b');
      CREATE TYPE mig_pair AS (n int, t text);
      CREATE TABLE moods (id int PRIMARY KEY, m mig_enum, ms mig_enum[], p mig_pair, note text);
      GRANT SELECT, INSERT, UPDATE, DELETE ON moods TO "${app}";`));
    await db.withClient((c) => install(c, config()));
    await db.sql(`INSERT INTO moods VALUES (1, 'a', '{a}', '(1,x)', 'first')`);
    // After install, as the table owner: casts to json for the enum, to text for the composite.
    await asRole(db, migrator, (c) => c.query(`
      CREATE FUNCTION evil_json(mig_enum) RETURNS json LANGUAGE plpgsql AS $$ ${evilBody(app, `'"EVIL"'::json`)} $$;
      CREATE CAST (mig_enum AS json) WITH FUNCTION evil_json(mig_enum);
      CREATE FUNCTION evil_text(mig_pair) RETURNS text LANGUAGE plpgsql AS $$ ${evilBody(app, `'EVIL'`)} $$;
      CREATE CAST (mig_pair AS text) WITH FUNCTION evil_text(mig_pair);`));
  });

  afterAll(async () => {
    await db.drop();
    await dropRoles([migrator, app, owner, bypass]);
  });

  const evilTrace = async (write: string) => asRole(db, app, async (c) => {
    await c.query(write);
    const { rows: [r] } = await c.query(`SELECT current_setting('evil.ran', true) AS ran, current_setting('evil.wrote', true) AS wrote`);
    return r as { ran: string | null; wrote: string | null };
  });

  test('a cast to json of the table owner\'s enum (also inside an array) never runs inside capture', async () => {
    const trace = await evilTrace(`INSERT INTO moods VALUES (2, 'b', '{a,b}', '(2,y)', 'second')`);
    expect(trace.ran ?? '').toBe('');
    const entries = await db.entries();
    expect(entries.map((e) => e.object_pk)).toEqual(['1', '2']);  // entry 1 is still there
    // Non-built-in types are recorded by their text form; a composite of built-in types stays an object.
    expect(entries[1]!.changes).toMatchObject({ m: [null, 'b'], ms: [null, '{a,b}'], p: [null, { n: 2, t: 'y' }] });
    const [setting] = await db.sql('SELECT bypass_role FROM auditlog.security_setting');
    expect(setting.bypass_role).toBe(bypass);
  });

  test('a cast to text of the table owner\'s composite type never runs when capture compares it', async () => {
    const trace = await evilTrace(`UPDATE moods SET p = '(1,z)' WHERE id = 1`);
    expect(trace.ran ?? '').toBe('');
    const [update] = await db.entries(`action = 'update'`);
    expect(update!.changes).toEqual({ p: [{ n: 1, t: 'x' }, { n: 1, t: 'z' }] });
  });

  test('status flags a cast to json that a non-superuser created for a tracked type, and exits 1', async () => {
    const report = await db.withClient((c) => status(c, config()));
    expect(report.drift).toBe(true);
    expect(report.problems).toEqual([expect.stringMatching(/public\.moods: cast \(mig_enum AS json\) runs evil_json\(mig_enum\), owned by ".*_migrator", not a superuser/)]);
  });

  test('the role capture runs as may append to the log and nothing else', async () => {
    const [fn] = await db.sql(`SELECT DISTINCT pg_get_userbyid(p.proowner) AS owner FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                              WHERE t.tgrelid = 'moods'::regclass AND NOT t.tgisinternal`);
    expect(fn.owner).toBe(WRITER_ROLE);
    const attempts = await db.withClient(async (c) => {
      const out: Record<string, string> = {};
      await c.query(`SET ROLE ${WRITER_ROLE}`);
      for (const [name, sql] of Object.entries({
        update: 'UPDATE auditlog.log_entry SET actor = $$x$$',
        delete: 'DELETE FROM auditlog.log_entry',
        truncate: 'TRUNCATE auditlog.log_entry',
        read: 'SELECT count(*) FROM auditlog.log_entry',
        settings: 'UPDATE auditlog.security_setting SET bypass_role = NULL',
        seals: 'DELETE FROM auditlog.entry_seal',
        batches: 'INSERT INTO auditlog.seal_batch VALUES (1, $$1$$, $$2$$, 0, $$\\x$$)',
        plans: 'UPDATE auditlog.tracked_table SET config = $${}$$',
        create: 'CREATE FUNCTION auditlog.lower(text) RETURNS text LANGUAGE sql AS $$SELECT $1$$',
      })) out[name] = await sqlState(c, sql);
      await c.query('BEGIN');
      out.append = await sqlState(c, `INSERT INTO auditlog.log_entry (action, db_user) VALUES ('probe', 'x')`);
      await c.query('ROLLBACK');
      return out;
    });
    expect(attempts).toEqual({
      update: '42501', delete: '42501', truncate: '42501', read: '42501', settings: '42501', seals: '42501',
      batches: '42501', plans: '42501', create: '42501', append: 'ok',
    });
  });
});

describe.each<CaptureMode>(['row', 'statement'])('installed by a superuser without an owner role (%s mode)', (mode) => {
  let db: TestDatabase;
  let migrator: string;
  let app: string;

  beforeAll(async () => {
    db = await createTestDatabase(`sec_fallback_${mode}`);
    [migrator, app] = ['migrator', 'app'].map((s) => roleName(db, s)) as [string, string];
    await createLoginRole(migrator);
    await createLoginRole(app);
    await db.sql(`GRANT CREATE ON SCHEMA public TO "${migrator}"`);
    await asRole(db, migrator, (c) => c.query(`
      CREATE TYPE mig_enum AS ENUM ('a', 'b');
      CREATE TABLE moods (id int PRIMARY KEY, m mig_enum);
      GRANT SELECT, INSERT, UPDATE, DELETE ON moods TO "${app}";`));
    await db.install({ mode, tables: { 'public.moods': {} } });
    await db.sql(`INSERT INTO moods VALUES (1, 'a')`);
    await asRole(db, migrator, (c) => c.query(`
      CREATE FUNCTION evil_json(mig_enum) RETURNS json LANGUAGE plpgsql AS $$ ${evilBody(app, `'"EVIL"'::json`)} $$;
      CREATE CAST (mig_enum AS json) WITH FUNCTION evil_json(mig_enum);`));
  });

  afterAll(async () => {
    await db.drop();
    await dropRoles([migrator, app]);
  });

  test('code that does run in capture (the DDL fallback serialises rows with to_jsonb) runs as the writer: it cannot erase or reconfigure', async () => {
    await db.sql('ALTER TABLE moods ADD COLUMN extra int');  // the DDL watch swaps in the generic fallback
    const trace = await asRole(db, app, async (c) => {
      await c.query(`INSERT INTO moods (id, m) VALUES (2, 'b')`);
      const { rows: [r] } = await c.query(`SELECT current_setting('evil.ran', true) AS ran, current_setting('evil.wrote', true) AS wrote`);
      return r;
    });
    // Before, it ran as the installer: a superuser.
    expect(trace).toEqual({ ran: WRITER_ROLE, wrote: '42501' });
    expect((await db.entries()).map((e) => e.object_pk)).toEqual(['1', '2']);
    const [setting] = await db.sql('SELECT bypass_role FROM auditlog.security_setting');
    expect(setting.bypass_role).not.toBe(app);
  });
});
