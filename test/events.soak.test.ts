// Soak: concurrent writers (some transactions held open, some rolled back), a hook that fails
// now and then, the subscriber's connections killed and the subscriber restarted mid-stream.
// Afterwards every committed entry was delivered, nothing else was, each object's entries first
// arrived in commit order, and duplicates are counted.
import { Pool } from 'pg';
import { subscribe } from '../src';
import type { Subscription } from '../src/interfaces';
import { createTestDatabase, type TestDatabase } from './helpers';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('events_soak');
  await db.sql(`CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
                CREATE TABLE transfers (id serial PRIMARY KEY, amount int NOT NULL)`);
  await db.sql(`INSERT INTO accounts SELECT i, 0 FROM generate_series(1, 20) i`);
  await db.install({ tables: { 'public.accounts': {}, 'public.transfers': {} } });
});

afterAll(() => db.drop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('every committed entry is delivered across kills and restarts; duplicates are counted', async () => {
  const WRITERS = 6;
  const RUN_MS = 6_000;
  const deliveries = new Map<string, number>();
  const firstSeen: Array<{ key: string; id: number }> = [];
  let hookCalls = 0;
  const lines: string[] = [];

  const start = () => subscribe({
    connectionString: db.url, name: 'soak', batchSize: 50, pollIntervalMs: 250,
    retry: { minDelayMs: 10, maxDelayMs: 200 }, log: (l) => lines.push(l),
  }, async (entries) => {
    // Every 25th call fails: the batch must come again, and the cursor must not move.
    if (++hookCalls % 25 === 0) throw new Error('flaky downstream');
    for (const e of entries) {
      if (!deliveries.has(e.id)) firstSeen.push({ key: `${e.table_name}:${e.object_pk}`, id: Number(e.id) });
      deliveries.set(e.id, (deliveries.get(e.id) ?? 0) + 1);
    }
  });
  let sub: Subscription = await start();
  sub.on('error', () => undefined);

  const writers = new Pool({ connectionString: db.url, max: WRITERS });
  const stopAt = Date.now() + RUN_MS;
  let rolledBack = 0;
  const writer = async (w: number) => {
    for (let i = 0; Date.now() < stopAt; i++) {
      const c = await writers.connect();
      try {
        await c.query('BEGIN');
        await c.query('INSERT INTO transfers (amount) VALUES ($1)', [i]);
        await c.query('UPDATE accounts SET balance = balance + 1 WHERE id = $1', [1 + ((w * 7 + i) % 20)]);
        // Hold some transactions open so later ids commit first.
        if (i % 10 === 0) await sleep(30 + Math.random() * 150);
        if (i % 13 === 0) {
          await c.query('ROLLBACK');
          rolledBack++;
        } else {
          await c.query('COMMIT');
        }
      } finally {
        c.release();
      }
    }
  };
  const chaos = async () => {
    for (let round = 1; Date.now() < stopAt - 500; round++) {
      await sleep(800);
      if (round % 3 === 0) {
        // A restart: the new process knows only what the stored cursor says.
        await sub.close();
        sub = await start();
        sub.on('error', () => undefined);
      } else {
        await db.sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                      WHERE datname = current_database() AND application_name LIKE 'pg-auditlog soak%'`);
      }
    }
  };
  await Promise.all([...Array.from({ length: WRITERS }, (_, w) => writer(w)), chaos()]);
  await writers.end();

  const committed = (await db.sql(`SELECT id::text FROM auditlog.log_entry WHERE table_name IN ('accounts', 'transfers')`))
    .map((r) => r.id as string);
  const until = Date.now() + 20_000;
  while (committed.some((id) => !deliveries.has(id)) && Date.now() < until) await sleep(100);
  await sub.close();

  const missing = committed.filter((id) => !deliveries.has(id));
  const committedSet = new Set(committed);
  const unexpected = [...deliveries.keys()].filter((id) => !committedSet.has(id));
  const duplicates = [...deliveries.values()].reduce((sum, n) => sum + n - 1, 0);
  console.log(`soak: ${committed.length} committed entries (${rolledBack} transactions rolled back), ` +
    `${deliveries.size} distinct delivered, ${missing.length} lost, ${duplicates} duplicate deliveries, ` +
    `${hookCalls} hook calls, ${lines.filter((l) => /restored/.test(l)).length} listener reconnects`);
  expect(committed.length).toBeGreaterThan(500);
  expect(missing).toEqual([]);
  expect(unexpected).toEqual([]);
  // Per object, entries first arrived in commit order (for one row that is also id order).
  const lastByObject = new Map<string, number>();
  const outOfOrder = firstSeen.filter(({ key, id }) => {
    const bad = (lastByObject.get(key) ?? 0) > id;
    lastByObject.set(key, Math.max(id, lastByObject.get(key) ?? 0));
    return bad;
  });
  expect(outOfOrder).toEqual([]);
});
