// What every CLI command shares: argument parsing, the connection, the config, confirmation.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Client } from 'pg';
import { CONFIG_FILE_NAMES, findConfigFile, loadConfigFile } from '../config/load';
import { validateConfig, type NormalizedConfig } from '../config/validate';
import { AuditLogError } from '../errors';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdinIsTTY: boolean;
  /** Reads one answer from the terminal. */
  ask: (question: string) => Promise<string>;
}

export interface Command {
  name: string;
  summary: string;
  /** Full --help text. */
  help: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** Returns the process exit code. */
  run: (values: Record<string, string | boolean | undefined>, positionals: string[], io: Io) => Promise<number>;
}

/** Exit codes: 0 success, 1 failure or drift, 2 bad usage or config, 3 unknown (history --at). */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2, UNKNOWN: 3 } as const;

export const CONNECTION_OPTIONS = {
  'database-url': { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const CONNECTION_HELP = `  --database-url URL  PostgreSQL connection string (default: $DATABASE_URL)
  --config FILE       config file (default: auditlog.config.ts, .js or .json in this folder)
  -h, --help          show this help`;

export function parse(command: Command, argv: string[]) {
  return parseArgs({ args: argv, options: command.options, allowPositionals: true, strict: true });
}

/** Flag over environment: --database-url, then DATABASE_URL. */
export function databaseUrl(values: Record<string, unknown>, io: Io): string {
  const url = (values['database-url'] as string | undefined) ?? io.env.DATABASE_URL;
  if (!url) {
    throw new AuditLogError('NO_DATABASE_URL', 'no database given: pass --database-url postgres://… or set DATABASE_URL');
  }
  return url;
}

export async function loadConfig(values: Record<string, unknown>, io: Io): Promise<NormalizedConfig> {
  const file = findConfigFile(values.config as string | undefined, io.cwd);
  return validateConfig(await loadConfigFile(file), file);
}

export async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, application_name: 'auditlog-cli' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Asks before a destructive step; without a terminal only --yes lets it go ahead. */
export async function confirm(question: string, yes: boolean, io: Io): Promise<boolean> {
  if (yes) return true;
  if (!io.stdinIsTTY) {
    throw new AuditLogError('CONFIRMATION_REQUIRED', `${question.replace(/\?$/, '')}: refusing without --yes, as no terminal is attached to confirm`);
  }
  const answer = await io.ask(`${question} [y/N] `);
  return /^y(es)?$/i.test(answer.trim());
}

export function terminalIo(): Io {
  return {
    out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
    env: process.env,
    cwd: process.cwd(),
    stdinIsTTY: Boolean(process.stdin.isTTY),
    ask: async (question) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    },
  };
}

export const SCHEMA_OPTION = { schema: { type: 'string' } } as const;
export const SCHEMA_HELP = '  --schema NAME       audit schema (default: from the config file if there is one, else "auditlog")';

/** The audit schema for commands that need no config: --schema, else the config's, else "auditlog". */
export async function auditSchema(values: Record<string, unknown>, io: Io): Promise<string> {
  if (typeof values.schema === 'string') return values.schema;
  const hasConfig = values.config !== undefined || CONFIG_FILE_NAMES.some((n) => existsSync(path.join(io.cwd, n)));
  if (!hasConfig) return 'auditlog';
  return (await loadConfig(values, io)).schema;
}
