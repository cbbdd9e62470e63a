// Config shape validation and identifier parsing: pure, no database.
import { validateConfig } from '../src/config/validate';
import { generatedName, parseColumnName, parseQualifiedName, quoteIdent, quoteLiteral } from '../src/ident';

test('parses schema.table with SQL identifier rules', () => {
  expect(parseQualifiedName('public.users')).toEqual({ schema: 'public', name: 'users' });
  expect(parseQualifiedName('Public.Users')).toEqual({ schema: 'public', name: 'users' });
  expect(parseQualifiedName('public."My Table"')).toEqual({ schema: 'public', name: 'My Table' });
  expect(parseQualifiedName('"we.ird"."a""b"')).toEqual({ schema: 'we.ird', name: 'a"b' });
  expect(parseQualifiedName('users')).toEqual({ schema: 'public', name: 'users' });
  for (const bad of ['a.b.c', '"unterminated', 'a.', '.b', '""', 'a b']) expect(parseQualifiedName(bad)).toBeNull();
  expect(parseColumnName('"Email"')).toBe('Email');
  expect(parseColumnName('Email')).toBe('Email');
});

test('quotes identifiers and literals so no input can escape them', () => {
  expect(quoteIdent('a"b; DROP TABLE x; --')).toBe('"a""b; DROP TABLE x; --"');
  expect(quoteLiteral("o'brien")).toBe("'o''brien'");
  expect(() => quoteIdent('a\0b')).toThrow(/NUL/);
});

test('generated names stay within 63 bytes and stay distinct', () => {
  const long = 'ü'.repeat(80);
  const a = generatedName('capture', `public_${long}a`, `public.${long}a`);
  const b = generatedName('capture', `public_${long}b`, `public.${long}b`);
  expect(Buffer.byteLength(a)).toBeLessThanOrEqual(63);
  expect(a).not.toBe(b);
  expect(generatedName('capture', 'public_users', 'public.users')).toMatch(/^capture_public_users_[0-9a-f]{8}$/);
});

test('normalises a valid config with defaults', () => {
  const config = validateConfig({
    excludeFields: ['updated_at'],
    tables: { 'public.users': { mask: ['ssn'], actions: ['delete', 'insert'] }, 'public."Order Items"': {} },
  });
  expect(config.schema).toBe('auditlog');
  expect(config.tables.map((t) => t.table)).toEqual([{ schema: 'public', name: 'users' }, { schema: 'public', name: 'Order Items' }]);
  expect(config.tables[0]).toMatchObject({ mask: ['ssn'], actions: ['insert', 'delete'], snapshot: false });
  expect(config.tables[1]!.actions).toEqual(['insert', 'update', 'delete', 'truncate']);
});

test('reports every shape problem at once, each naming where and what to do', () => {
  let error: any;
  try {
    validateConfig({
      schema: '',
      tabels: {},
      excludeFields: 'updated_at',
      tables: {
        'public.users': { include: ['a', 'b'], exclude: ['b'], mask: ['b'], exlude: [], snapshot: 'yes', actions: ['upsert'] },
        'a.b.c': {},
        'public.USERS': {},
        'public.empty': { include: [] },
      },
    }, 'auditlog.config.json');
  } catch (err) {
    error = err;
  }
  expect(error.code).toBe('CONFIG_INVALID');
  expect(error.message).toMatch(/^auditlog.config.json is invalid:/);
  expect(error.problems).toEqual([
    'unknown key "tabels"; expected one of schema, mode, excludeFields, includeAll, tables, roles, tamperEvidence, tenantIsolation, unattributed, partitioning, retention',
    '"schema" must be a non-empty schema name, e.g. "auditlog"',
    '"excludeFields" must be a list of names, e.g. ["updated_at"]',
    'tables["public.users"]: unknown key "exlude"; expected one of include, exclude, mask, mapping, objectRepr, snapshot, actions, primaryKey, mode, unattributed, logTable',
    'tables["public.users"]: column "b" is both included and excluded; remove it from one list',
    'tables["public.users"]: column "b" is both masked and excluded; an excluded column is never stored, remove it from "mask"',
    'tables["public.users"].snapshot must be true or false',
    'tables["public.users"].actions must be a non-empty list drawn from insert, update, delete, truncate',
    'tables: "a.b.c" is not a table name; write it as schema.table (quote mixed-case parts: public."MyTable")',
    'tables: "public.USERS" and "public.users" name the same table public.users; keep one',
    'tables["public.empty"].include is empty: list the columns to track, or remove "include" to track all',
  ]);
});

test('an empty config says there is nothing to audit', () => {
  expect(() => validateConfig({})).toThrow(/nothing to audit/);
  expect(() => validateConfig(null)).toThrow(/expected an object/);
});

test('retention is a top-level key that needs partitioning; it may also stand inside partitioning', () => {
  const tables = { 'public.users': {} };
  expect(validateConfig({ tables, partitioning: { interval: 'month' }, retention: '13 months' }).partitioning?.retention)
    .toEqual({ amount: 13, unit: 'month', text: '13 months' });
  expect(validateConfig({ tables, partitioning: { interval: 'month', retention: '13 months' } }).partitioning?.retention?.text).toBe('13 months');
  const problems = (raw: unknown) => {
    try { validateConfig(raw); return []; } catch (err) { return (err as { problems?: string[] }).problems ?? [String(err)]; }
  };
  expect(problems({ tables, retention: '13 months' })).toEqual([expect.stringContaining('needs "partitioning"')]);
  expect(problems({ tables, partitioning: { interval: 'month', retention: '1 year' }, retention: '13 months' })).toEqual([expect.stringContaining('given twice')]);
  expect(problems({ tables, partitioning: { interval: 'month' }, retention: 'forever' })).toEqual([expect.stringContaining('"retention" must read like')]);
});
