// `npm run test:matrix`: runs the whole suite on PostgreSQL 14 to 18, each in a container
// started by testcontainers. Needs a Docker engine and Node >= 22 (testcontainers 12), so it is
// not part of CI here; install testcontainers first: npm install --no-save testcontainers
import { spawnSync } from 'node:child_process';

const VERSIONS = (process.env.PG_VERSIONS ?? '14,15,16,17,18').split(',');

let testcontainers;
try {
  testcontainers = await import('testcontainers');
} catch {
  console.error('testcontainers is not installed: npm install --no-save testcontainers (needs Node >= 22 and a Docker engine)');
  process.exit(2);
}
const { GenericContainer, Wait } = testcontainers;

const rows = [];
for (const version of VERSIONS) {
  console.log(`\n== PostgreSQL ${version}`);
  const container = await new GenericContainer(`postgres:${version}`)
    .withEnvironment({ POSTGRES_PASSWORD: 'postgres' })
    .withExposedPorts(5432)
    .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
    .start();
  try {
    const url = `postgres://postgres:postgres@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
    const run = spawnSync('npx', ['jest'], { stdio: 'inherit', env: { ...process.env, TEST_DATABASE_URL: url } });
    rows.push([version, run.status === 0 ? 'pass' : 'FAIL']);
  } finally {
    await container.stop();
  }
}
console.log('\n| PostgreSQL | suite |\n|---|---|');
for (const [v, r] of rows) console.log(`| ${v} | ${r} |`);
process.exit(rows.every(([, r]) => r === 'pass') ? 0 : 1);
