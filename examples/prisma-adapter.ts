// Prisma 7 through @prisma/adapter-pg: `new PrismaClient({ adapter: new PrismaPg(pool) })`.
// The generated client needs `prisma generate`; this program drives the adapter the way the
// client's query engine does (queries, then a transaction with BEGIN ... COMMIT).
import { Pool } from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { auditPool, runWithAuditContext } from 'pg-auditlog';
import { check, setUp, url } from './setup';

const int = { scalarType: 'int', arity: 'scalar' } as const;
const text = { scalarType: 'string', arity: 'scalar' } as const;

async function main() {
  await setUp();
  const pool = auditPool(new Pool({ connectionString: url }));
  const adapter = await new PrismaPg(pool).connect(); // with a generated client: new PrismaClient({ adapter: new PrismaPg(pool) })
  await runWithAuditContext({ actor: 'prisma-user', cid: 'job-1' }, async () => {
    await adapter.executeRaw({ sql: 'INSERT INTO example_users VALUES ($1, $2)', args: [1, 'a@example.com'], argTypes: [int, text] } as any);
    const tx = await adapter.startTransaction();
    await tx.executeRaw({ sql: 'UPDATE example_users SET email = $1 WHERE id = $2', args: ['b@example.com', 1], argTypes: [text, int] } as any);
    await tx.executeRaw({ sql: 'COMMIT', args: [], argTypes: [] } as any);
    await tx.commit();
  });
  await adapter.dispose();
  await pool.end();
  await check('prisma-user');
}
main().catch((err) => { console.error(err); process.exit(1); });
