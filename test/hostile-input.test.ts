// Hostile input, generated: names with quotes, spaces, unicode and SQL fragments; context
// values of any text, size or shape. Each is stored faithfully or rejected with a clear error;
// none is ever executed, and none breaks the user's write.
import fc from 'fast-check';
import { install } from '../src/install';
import { quoteIdent } from '../src/ident';
import { withAuditSession } from '../src/session';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('hostile');
  // The canary: any injected DROP / DELETE would take it with it.
  await db.sql(`CREATE TABLE canary (id int PRIMARY KEY); INSERT INTO canary VALUES (1);
                CREATE TABLE target (id serial PRIMARY KEY, body text)`);
  await db.install({ tables: { 'public.target': {} } });
});

afterAll(() => db.drop());

async function canaryAlive(): Promise<void> {
  expect(await db.sql('SELECT id FROM canary')).toEqual([{ id: 1 }]);
}

const FRAGMENTS = [
  '"', "'", '""', "''", ';', '--', '/*', '*/', '$$', '$capture$', '$1', ' ', '\\', '\t', '\n', '.', '%I', '%s',
  'x; DROP TABLE canary; --', "'); DELETE FROM auditlog.log_entry; --", '"); DROP TABLE canary; --',
  'OR 1=1', 'Ünïcödé', '名前', '🙂', '\u200b', 'SELECT', 'END;', '$$ LANGUAGE sql; --',
];
const SYSTEM_COLUMNS = ['tableoid', 'xmin', 'cmin', 'xmax', 'cmax', 'ctid'];

/** Not a lone UTF-16 surrogate: such a string has no UTF-8 form, so it cannot reach the server intact. */
const wellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
const piece = fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 3 }));
/** A name PostgreSQL accepts as a quoted identifier: 1–63 bytes, no NUL. */
const identifier = fc.array(piece, { minLength: 1, maxLength: 4 })
  .map((parts) => parts.join(''))
  .filter((s) => !s.includes('\0') && Buffer.byteLength(s, 'utf8') <= 63 && wellFormed(s));
const schemaName = identifier.filter((s) => !/^pg_/.test(s) && !['public', 'auditlog', 'information_schema'].includes(s));
const columnName = identifier.filter((s) => !SYSTEM_COLUMNS.includes(s));
const text = fc.oneof(fc.string({ unit: 'binary' }), fc.array(piece).map((p) => p.join(''))).filter((s) => wellFormed(s));

/** Config syntax for an exact column name: "…" with quotes doubled. */
const configColumn = (name: string) => quoteIdent(name);

test('tables, schemas and columns with hostile names are captured under their exact names', async () => {
  await fc.assert(fc.asyncProperty(
    schemaName, identifier, fc.uniqueArray(columnName, { minLength: 2, maxLength: 2 }), text.filter((s) => !s.includes('\0')), identifier,
    async (schema, table, [keyCol, valueCol], value, display) => {
      const qualified = `${quoteIdent(schema)}.${quoteIdent(table)}`;
      await db.sql(`CREATE SCHEMA ${quoteIdent(schema)};
                    CREATE TABLE ${qualified} (${quoteIdent(keyCol!)} int PRIMARY KEY, ${quoteIdent(valueCol!)} text)`);
      try {
        await db.sql('TRUNCATE auditlog.log_entry');
        await db.install({
          tables: {
            'public.target': {},
            [qualified]: { objectRepr: configColumn(valueCol!), mapping: { [configColumn(valueCol!)]: display }, snapshot: true },
          },
        });
        await db.sql(`INSERT INTO ${qualified} VALUES (1, $1)`, [value]);
        // A session with backslash escapes in literals compiles the capture function too.
        await db.withClient(async (c) => {
          await c.query('SET standard_conforming_strings = off');
          await c.query(`UPDATE ${qualified} SET ${quoteIdent(valueCol!)} = $1 || 'x'`, [value]);
        });
        const entries = await db.entries();
        expect(entries.map((e) => [e.table_schema, e.table_name, e.action, e.object_pk, e.object_repr])).toEqual([
          [schema, table, 'insert', '1', value], [schema, table, 'update', '1', `${value}x`],
        ]);
        expect(entries[0]!.changes).toEqual({ [keyCol!]: [null, 1], [valueCol!]: [null, value] });
        expect(entries[1]!.changes).toEqual({ [valueCol!]: [value, `${value}x`] });
        await canaryAlive();
      } finally {
        await db.sql(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`);
      }
    }), { numRuns: 10 });
});

test('a line break in a column name cannot turn the rest of the name into SQL', async () => {
  const column = 'note\nDROP TABLE canary; --';
  await db.sql(`CREATE TABLE newline_names (id int PRIMARY KEY, ${quoteIdent(column)} text, "back\\slash'" text)`);
  await db.install({ tables: { 'public.target': {}, 'public.newline_names': {} } });
  await db.sql('TRUNCATE auditlog.log_entry');
  await db.withClient(async (c) => {
    await c.query('SET standard_conforming_strings = off');
    await c.query(`INSERT INTO newline_names VALUES (1, 'v', 'w')`);
  });
  expect((await db.entries())[0]!.changes).toEqual({ id: [null, 1], [column]: [null, 'v'], "back\\slash'": [null, 'w'] });
  await canaryAlive();
});

test('context values of any text and shape are stored exactly, or rejected before the write', async () => {
  const json = fc.dictionary(text, fc.jsonValue(), { maxKeys: 4 });
  await fc.assert(fc.asyncProperty(
    text, text, text, json, fc.oneof(fc.ipV4(), fc.ipV6(), text),
    async (actor, cid, tenant, data, remoteAddr) => {
      await db.sql('TRUNCATE auditlog.log_entry');
      const ctx = { actor, cid, tenant, data, remoteAddr };
      const hasNul = [actor, cid, tenant, remoteAddr].some((v) => v.includes('\0')) || JSON.stringify(data).includes('\\u0000');
      const write = withAuditSession(db.pool, ctx, (c) => c.query(`INSERT INTO target (body) VALUES ('ctx')`));
      let rejected: unknown;
      await write.catch((err) => { rejected = err; });
      if (rejected !== undefined) {
        // The only reasons to refuse: what PostgreSQL text cannot hold (NUL, a lone surrogate) or
        // a malformed address (or one with a zone index, which inet cannot hold).
        expect(rejected).toMatchObject({ code: 'CONTEXT_INVALID' });
        expect(hasNul || /is not an IPv4 or IPv6 address|has a zone index|lone surrogate/.test((rejected as Error).message)).toBe(true);
        expect(await db.entries()).toEqual([]);
        return;
      }
      expect(hasNul).toBe(false);
      const [e] = await db.entries();
      expect(e).toMatchObject({ actor: actor || null, cid: cid || null, tenant_id: tenant || null, action: 'insert' });
      expect(e!.additional_data).toEqual(JSON.parse(JSON.stringify(data)));
      if (remoteAddr === '') expect(e!.remote_addr).toBeNull();
      else expect(e!.remote_addr).not.toBeNull();
      await canaryAlive();
    }), { numRuns: 30 });
});

test('raw settings the app sets itself, however malformed, never break its write', async () => {
  await fc.assert(fc.asyncProperty(text, text, text, async (remoteAddr, data, disable) => {
    fc.pre(![remoteAddr, data, disable].some((v) => v.includes('\0')));
    await db.sql('TRUNCATE auditlog.log_entry');
    await db.withClient(async (c) => {
      await c.query('BEGIN');
      await c.query(`SELECT set_config('auditlog.remote_addr', $1, true), set_config('auditlog.data', $2, true),
                            set_config('auditlog.disable', $3, true)`, [remoteAddr, data, disable]);
      await c.query(`INSERT INTO target (body) VALUES ('raw')`);
      await c.query('COMMIT');
    });
    const entries = await db.entries();
    const insert = entries.find((e) => e.action === 'insert')!;
    expect(insert).toBeDefined();
    if (data !== '') {
      // Valid JSON is stored as such; anything else as a JSON string holding the exact text.
      let parsed: unknown = data;
      try { parsed = JSON.parse(data); } catch { /* stays text */ }
      expect(JSON.stringify(insert.additional_data)).toBe(JSON.stringify(parsed));
    }
  }), { numRuns: 20 });
});

test('context data that is not a JSON object is rejected before anything is written', async () => {
  await db.sql('TRUNCATE auditlog.log_entry');
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  // (A bigint is no longer refused: it is stored as a JSON number with its digits.)
  const attempts: unknown[] = [circular, 'a string', ['an', 'array'], 42];
  for (const data of attempts) {
    await expect(withAuditSession(db.pool, { data } as never, (c) => c.query(`INSERT INTO target (body) VALUES ('x')`)))
      .rejects.toMatchObject({ code: 'CONTEXT_INVALID', message: expect.stringMatching(/data( must be a plain object|\.self refers back to itself)/) });
  }
  await expect(withAuditSession(db.pool, { actor: 'a\0b' }, async () => undefined))
    .rejects.toMatchObject({ code: 'CONTEXT_INVALID', message: expect.stringContaining('actor contains a NUL character') });
  expect(await db.entries()).toEqual([]);
});

test('huge context values are stored whole', async () => {
  await db.sql('TRUNCATE auditlog.log_entry');
  const actor = 'a'.repeat(1_000_000);
  const data = { blob: '🙂'.repeat(1_000_000), nested: { deep: 'x'.repeat(100_000) } };
  await withAuditSession(db.pool, { actor, cid: 'c'.repeat(100_000), data }, (c) => c.query(`INSERT INTO target (body) VALUES ('big')`));
  const [e] = await db.entries();
  expect(e!.actor).toBe(actor);
  expect(e!.additional_data).toEqual(data);
});

test('config values that try to inject SQL are rejected with a clear error or stored as data', async () => {
  const evil = `x"); DROP TABLE canary; --`;
  await expect(db.install({ tables: { 'public.target': { objectRepr: evil } } })).rejects.toMatchObject({
    code: 'CONFIG_INVALID', message: expect.stringContaining(`column "${evil}" does not exist`),
  });
  await expect(db.install({ tables: { [`public."${evil.replace(/"/g, '""')}"`]: {} } })).rejects.toMatchObject({
    code: 'CONFIG_INVALID', message: expect.stringContaining('does not exist'),
  });
  await expect(db.install({ tables: { 'public.target': {} }, roles: { app: `'; DROP TABLE canary; --` } })).rejects.toMatchObject({
    code: 'UNSAFE_ROLES', message: expect.stringContaining('does not exist'),
  });
  await expect(db.install({ tables: { 'public.target': {} }, tamperEvidence: 'true; DROP TABLE canary' as unknown as boolean })).rejects.toMatchObject({
    code: 'CONFIG_INVALID', message: expect.stringContaining('"tamperEvidence" must be true or false'),
  });
  // An audit schema whose name is SQL is just a name.
  const schema = `audit"; DROP TABLE canary; --`;
  await db.withClient((c) => install(c, { schema, tables: { 'public.target': { mapping: { body: `'); DROP TABLE canary; --` } } } }));
  await db.sql(`INSERT INTO target (body) VALUES ('two logs')`);
  const rows = await db.sql(`SELECT action, changes FROM ${quoteIdent(schema)}.log_entry`);
  expect(rows).toEqual([{ action: 'insert', changes: { id: [null, expect.any(Number)], body: [null, 'two logs'] } }]);
  await canaryAlive();
});
