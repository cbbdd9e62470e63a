// Time travel, property-based: random insert/update/delete/truncate sequences, each its own
// transaction; the true row is recorded after every step; stateAt() at random instants must
// equal the row as it was then, in every tracked, unmasked column.
import fc from 'fast-check';
import { isUnknownState, stateAt } from '../src';
import { exactJsonTypes } from '../src/db';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;

// Tracked, unmasked columns: what time travel promises to rebuild exactly.
const COMPARED = ['id', 'name', 'qty', 'price', 'tags', 'doc'];

beforeAll(async () => {
  db = await createTestDatabase('history_timetravel');
  const columns = 'id int PRIMARY KEY, name text, qty int, price numeric(12, 2), tags text[], doc jsonb, secret text, noise text';
  await db.sql(`CREATE TABLE things (${columns}); CREATE TABLE things_snap (${columns})`);
  await db.install({
    tables: {
      'public.things': { exclude: ['noise'], mask: ['secret'] },
      'public.things_snap': { exclude: ['noise'], mask: ['secret'], snapshot: true },
    },
  });
});

afterAll(() => db.drop());

const text = fc.string({ maxLength: 8 });
const fields = fc.record({
  name: fc.option(text),
  qty: fc.option(fc.integer({ min: -1000, max: 1000 })),
  price: fc.option(fc.integer({ min: -100000, max: 100000 }).map((n) => (n / 100).toFixed(2))),
  tags: fc.option(fc.array(fc.option(text), { maxLength: 3 })),
  doc: fc.option(fc.dictionary(text, fc.oneof(fc.integer(), text, fc.boolean(), fc.constant(null)), { maxKeys: 3 })),
  secret: fc.option(text),
  noise: text,
}, { requiredKeys: [] });

type Op =
  | { kind: 'insert' | 'update'; values: Record<string, unknown> }
  | { kind: 'delete' }
  | { kind: 'truncate' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fields.map((values) => ({ kind: 'insert' as const, values })) },
  { weight: 5, arbitrary: fields.map((values) => ({ kind: 'update' as const, values })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'delete' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'truncate' as const }) },
);

/** Microseconds since the epoch → ISO 8601 with all six fraction digits. */
function isoMicros(us: bigint): string {
  return new Date(Number(us / 1000n)).toISOString().replace('Z', `${String(us % 1000n).padStart(3, '0')}Z`);
}

let nextId = 1;

test('stateAt equals the real row at random instants of random change sequences', async () => {
  await db.withClient(async (c) => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('things', 'things_snap'),
        fc.array(op, { minLength: 1, maxLength: 12 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: -2, max: 2 }), fc.double({ min: 0, max: 1, noNaN: true })), { minLength: 3, maxLength: 6 }),
        async (table, ops, picks) => {
          const id = nextId++;
          const steps: Array<{ ts: bigint; row: Record<string, unknown> | null }> = [];
          let exists = false;
          for (const o of ops) {
            await c.query('BEGIN');
            const [{ us }] = (await c.query(`SELECT (extract(epoch FROM now()) * 1000000)::bigint::text AS us`)).rows;
            // Keep every step valid: insert needs a free key, update and delete an existing row.
            const kind = o.kind === 'truncate' ? 'truncate' : o.kind === 'delete' ? (exists ? 'delete' : 'skip')
              : exists ? 'update' : 'insert';
            if (kind === 'insert' || kind === 'update') {
              const values = (o as { values: Record<string, unknown> }).values;
              const cols = Object.keys(values);
              if (kind === 'insert') {
                await c.query(
                  `INSERT INTO ${table} (id${cols.map((k) => `, ${k}`).join('')}) VALUES ($1${cols.map((_k, i) => `, $${i + 2}`).join('')})`,
                  [id, ...cols.map((k) => (k === 'doc' && values[k] !== null ? JSON.stringify(values[k]) : values[k]))],
                );
              } else if (cols.length > 0) {
                await c.query(
                  `UPDATE ${table} SET ${cols.map((k, i) => `${k} = $${i + 2}`).join(', ')} WHERE id = $1`,
                  [id, ...cols.map((k) => (k === 'doc' && values[k] !== null ? JSON.stringify(values[k]) : values[k]))],
                );
              }
              exists = true;
            } else if (kind === 'delete') {
              await c.query(`DELETE FROM ${table} WHERE id = $1`, [id]);
              exists = false;
            } else if (kind === 'truncate') {
              await c.query(`TRUNCATE ${table}`);
              exists = false;
            }
            const { rows } = await c.query({ text: `SELECT to_jsonb(t) AS row FROM ${table} t WHERE id = $1`, values: [id], types: exactJsonTypes });
            await c.query('COMMIT');
            steps.push({ ts: BigInt(us), row: rows[0]?.row ?? null });
          }
          // Instants: every step's timestamp, random ones a microsecond or two around a step, and
          // anywhere between the first and the last step.
          const first = steps[0]!.ts;
          const span = steps[steps.length - 1]!.ts - first;
          const instants = picks.map(([i, delta, fraction]) =>
            (i % 3 === 2 ? first - 1000n + BigInt(Math.floor(Number(span + 2000n) * fraction)) : steps[i % steps.length]!.ts + BigInt(delta)));
          instants.push(first - 1n, ...steps.map((s) => s.ts));
          for (const at of instants) {
            // The truth: the row after the last step whose transaction started at or before `at`.
            const done = steps.filter((s) => s.ts <= at);
            const truth = done.length === 0 ? null : done[done.length - 1]!.row;
            const result = await stateAt(c, table, id, isoMicros(at));
            // Unknown only for a key that never had an entry of its own (its ops were truncates).
            if (isUnknownState(result)) expect(ops.some((o) => o.kind === 'insert' || o.kind === 'update')).toBe(false);
            const rebuilt = isUnknownState(result) ? null : result;
            const pick = (row: Record<string, unknown> | null) =>
              row === null ? null : Object.fromEntries(COMPARED.map((k) => [k, row[k] ?? null]));
            expect({ at: isoMicros(at), state: pick(rebuilt) }).toEqual({ at: isoMicros(at), state: pick(truth) });
            if (rebuilt !== null && truth !== null && truth.secret !== null) expect(rebuilt.secret).toBe('[masked]');
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
