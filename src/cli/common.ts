// What every CLI command shares: argument parsing, the connection, the config, confirmation.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Client } from 'pg';
import { CONFIG_FILE_NAMES, findConfigFile, loadConfigFile } from '../config/load';
import { checkConfig, validateConfig, type NormalizedConfig } from '../config/validate';
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
  'connect-timeout': { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const CONNECTION_HELP = `  --database-url URL  PostgreSQL connection string (default: $DATABASE_URL)
  --connect-timeout S seconds to wait for the server to answer (default: $PGCONNECT_TIMEOUT,
                      else 10; 0 waits forever)
  --config FILE       config file (default: auditlog.config.ts, .js or .json in this folder)
  -h, --help          show this help`;

export function parse(command: Command, argv: string[]) {
  return parseArgs({ args: argv, options: command.options, allowPositionals: true, strict: true });
}

/** Where to connect and how long to wait for the server to answer. */
export interface DatabaseTarget {
  url: string;
  /** 0: wait forever (libpq's meaning of PGCONNECT_TIMEOUT=0). */
  connectTimeoutSeconds: number;
}

export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;

/**
 * Flag over environment: --database-url, then DATABASE_URL; --connect-timeout, then
 * PGCONNECT_TIMEOUT, then 10 s. A URL that is not a PostgreSQL connection string is a usage
 * error, not a failed DNS lookup of part of it.
 */
export function databaseUrl(values: Record<string, unknown>, io: Io): DatabaseTarget {
  const flag = values['database-url'] as string | undefined;
  const url = flag ?? io.env.DATABASE_URL;
  if (!url) {
    throw new AuditLogError('NO_DATABASE_URL', 'no database given: pass --database-url postgres://… or set DATABASE_URL');
  }
  let ok = false;
  try {
    ok = /^postgres(ql)?:$/.test(new URL(url).protocol);
  } catch { /* not a URL */ }
  if (!ok) {
    throw new AuditLogError('INVALID_ARGUMENT',
      `${flag !== undefined ? '--database-url' : 'DATABASE_URL'} ${JSON.stringify(url.length > 80 ? `${url.slice(0, 77)}...` : url)} is not a PostgreSQL connection string; ` +
      'write it as postgres://user:password@host:5432/database (percent-encode special characters in the password)');
  }
  const timeoutFlag = values['connect-timeout'] as string | undefined;
  const timeoutText = timeoutFlag ?? io.env.PGCONNECT_TIMEOUT;
  let connectTimeoutSeconds = DEFAULT_CONNECT_TIMEOUT_SECONDS;
  if (timeoutText !== undefined && timeoutText !== '') {
    connectTimeoutSeconds = Number(timeoutText);
    if (!/^\d+(\.\d+)?$/.test(timeoutText.trim()) || !Number.isFinite(connectTimeoutSeconds)) {
      throw new AuditLogError('INVALID_ARGUMENT',
        `${timeoutFlag !== undefined ? '--connect-timeout' : 'PGCONNECT_TIMEOUT'} must be a number of seconds (0 waits forever), not ${JSON.stringify(timeoutText)}`);
    }
  }
  return { url, connectTimeoutSeconds };
}

/**
 * The config file, validated. With `deferProblems` (commands that go on to check it against
 * the database) its problems are kept in the config and reported with the catalog's, all at once.
 */
export async function loadConfig(values: Record<string, unknown>, io: Io, deferProblems = false): Promise<NormalizedConfig> {
  const file = findConfigFile(values.config as string | undefined, io.cwd);
  const raw = await loadConfigFile(file);
  if (!deferProblems) return validateConfig(raw, file);
  const { config, problems } = checkConfig(raw, file);
  return problems.length > 0 ? { ...config, deferredProblems: problems } : config;
}

export async function withClient<T>(target: DatabaseTarget, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({
    connectionString: target.url, application_name: 'auditlog-cli', connectionTimeoutMillis: Math.round(target.connectTimeoutSeconds * 1000),
  });
  try {
    await client.connect();
  } catch (err) {
    if (target.connectTimeoutSeconds > 0 && /timeout/i.test((err as Error).message)) {
      throw new AuditLogError('CONNECTION_FAILED',
        `no answer from the PostgreSQL server at ${client.host}:${client.port} within ${target.connectTimeoutSeconds} s: ` +
        'check the host and port (is it PostgreSQL, behind a firewall or a proxy that holds connections?), or raise --connect-timeout / PGCONNECT_TIMEOUT',
        { cause: err });
    }
    throw err;
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** An optional positive integer option such as --batch-size; undefined when not given. */
export function positiveIntegerOption(values: Record<string, unknown>, name: string): number | undefined {
  const text = values[name];
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new AuditLogError('INVALID_ARGUMENT', `--${name} must be a positive integer`);
  return n;
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

/**
 * A reader that stops early (`auditlog history … | head`) closes the pipe: stop quietly, with
 * the exit code so far, instead of an EPIPE stack trace.
 */
export function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    throw err;
  });
}

export function terminalIo(): Io {
  quietOnClosedPipe(process.stdout);
  quietOnClosedPipe(process.stderr);
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
