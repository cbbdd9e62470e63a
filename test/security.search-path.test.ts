// Without role separation the capture functions belong to the installer (here a superuser), so a
// function or operator that a writing role plants in its own search_path would run with those
// powers if capture resolved names through the caller's path. It must not change what capture
// records, in either mode; nor may the planted code run at all.
import { createTestDatabase, type TestDatabase } from './helpers';
import { asRole, createLoginRole, dropRoles, roleName } from './security-helpers';

let db: TestDatabase;
let writer: string;

beforeAll(async () => {
  db = await createTestDatabase('sec_search_path');
  writer = roleName(db, 'writer');
  await createLoginRole(writer);
  await db.sql(`
    CREATE TABLE row_t (id int PRIMARY KEY, n int, t text);
    CREATE TABLE stmt_t (id int PRIMARY KEY, n int, t text);
    GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON row_t, stmt_t TO "${writer}";
    CREATE SCHEMA planted AUTHORIZATION "${writer}";
  `);
  // No roles in the config: the installer owns the audit schema and the capture functions.
  await db.install({ tables: { 'public.row_t': { mode: 'row' }, 'public.stmt_t': { mode: 'statement' } } });
  await asRole(db, writer, (c) => c.query(PLANT));
});

afterAll(async () => {
  await db.drop();
  await dropRoles([writer]);
});

/** Every name capture code calls unqualified, shadowed by a function that leaves a trace and lies. */
const PLANT = `
  CREATE TABLE planted.trace (what text);
  GRANT INSERT ON planted.trace TO PUBLIC;
  CREATE FUNCTION planted.current_setting(text, boolean) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO planted.trace VALUES ('current_setting ' || $1) RETURNING 'forged' $$;
  CREATE FUNCTION planted.current_setting(text) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO planted.trace VALUES ('current_setting ' || $1) RETURNING 'forged' $$;
  CREATE FUNCTION planted.lower(text) RETURNS text LANGUAGE sql
    AS $$ INSERT INTO planted.trace VALUES ('lower ' || $1) RETURNING 'forged' $$;
  CREATE FUNCTION planted.row_number() RETURNS bigint LANGUAGE sql
    AS $$ INSERT INTO planted.trace VALUES ('row_number') RETURNING 1::bigint $$;
  CREATE FUNCTION planted.pg_current_xact_id() RETURNS xid8 LANGUAGE sql
    AS $$ INSERT INTO planted.trace VALUES ('pg_current_xact_id') RETURNING '1'::xid8 $$;
  -- Would make every column look unchanged (no update entry), or every text look changed.
  CREATE FUNCTION planted.int4eq(int, int) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO planted.trace VALUES ('int = int') RETURNING true $$;
  CREATE OPERATOR planted.= (LEFTARG = int, RIGHTARG = int, FUNCTION = planted.int4eq);
  CREATE FUNCTION planted.texteq(text, text) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO planted.trace VALUES ('text = text') RETURNING false $$;
  CREATE OPERATOR planted.= (LEFTARG = text, RIGHTARG = text, FUNCTION = planted.texteq);
  CREATE FUNCTION planted.jsonb_eq(jsonb, jsonb) RETURNS boolean LANGUAGE sql
    AS $$ INSERT INTO planted.trace VALUES ('jsonb = jsonb') RETURNING true $$;
  CREATE OPERATOR planted.= (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = planted.jsonb_eq);
  CREATE FUNCTION planted.text_concat(jsonb, jsonb) RETURNS jsonb LANGUAGE sql
    AS $$ INSERT INTO planted.trace VALUES ('jsonb || jsonb') RETURNING '{}'::jsonb $$;
  CREATE OPERATOR planted.|| (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = planted.text_concat);
`;

test.each(['row_t', 'stmt_t'])('a function planted in the writer\'s search_path cannot change what capture records (%s)', async (table) => {
  await db.sql('TRUNCATE auditlog.log_entry');
  await asRole(db, writer, async (c) => {
    await c.query('TRUNCATE planted.trace');
    // planted before pg_catalog: unqualified names resolve to the planted ones first (so the
    // writer's own statements below name the real operator).
    await c.query('SET search_path = planted, pg_catalog, public');
    await c.query('BEGIN');
    await c.query(`SELECT pg_catalog.set_config('auditlog.actor', 'real-actor', true)`);
    await c.query(`INSERT INTO public.${table} VALUES (1, 1, 'a'), (2, 2, 'b')`);
    await c.query(`UPDATE public.${table} SET n = 10 WHERE id OPERATOR(pg_catalog.=) 1`);
    await c.query(`UPDATE public.${table} SET t = 'b' WHERE id OPERATOR(pg_catalog.=) 2`); // a no-op: no entry
    await c.query(`DELETE FROM public.${table} WHERE id OPERATOR(pg_catalog.=) 2`);
    await c.query('COMMIT');
    expect((await c.query('SELECT what FROM planted.trace')).rows).toEqual([]);
  });
  const entries = await db.entries();
  expect(entries.map((e) => [e.table_name, e.action, e.object_pk, e.actor, e.db_user, e.changes])).toEqual([
    [table, 'insert', '1', 'real-actor', writer, { id: [null, 1], n: [null, 1], t: [null, 'a'] }],
    [table, 'insert', '2', 'real-actor', writer, { id: [null, 2], n: [null, 2], t: [null, 'b'] }],
    [table, 'update', '1', 'real-actor', writer, { n: [1, 10] }],
    [table, 'delete', '2', 'real-actor', writer, { id: [2, null], n: [2, null], t: ['b', null] }],
  ]);
  expect(new Set(entries.map((e) => e.txid)).size).toBe(1);
});
