// The CLI as users run it: a subprocess of dist/cli/main.js, rebuilt when the sources are newer.
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.join(__dirname, '..');
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

export interface Run { code: number; out: string; err: string }

function newest(dir: string): number {
  return Math.max(...readdirSync(dir, { withFileTypes: true }).map((d) =>
    d.isDirectory() ? newest(path.join(dir, d.name)) : statSync(path.join(dir, d.name)).mtimeMs));
}

/** Builds dist/ when src/ or sql/ changed since (npm test builds first anyway). */
export function ensureBuilt(): void {
  let built = 0;
  try { built = statSync(CLI).mtimeMs; } catch { /* not built yet */ }
  if (built < Math.max(newest(path.join(ROOT, 'src')), newest(path.join(ROOT, 'sql')))) {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  }
}

/** Runs `auditlog …` with stdin a closed pipe (no terminal); env adds to the test's environment. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, options: { cwd?: string; shell?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const done = (error: (Error & { code?: unknown }) | null, stdout: string, stderr: string) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr });
    const child = options.shell === undefined
      ? execFile('node', [CLI, ...args], { cwd: options.cwd ?? ROOT, env: { ...process.env, ...env } }, done)
      : execFile('bash', ['-c', options.shell, 'auditlog', CLI, ...args], { cwd: options.cwd ?? ROOT, env: { ...process.env, ...env } }, done);
    child.stdin?.end();
  });
}
