#!/usr/bin/env node
// The `auditlog` command: dispatches to one module per command.
import { AuditLogError } from '../errors';
import { EXIT, parse, terminalIo, type Command, type Io } from './common';
import { initCommand } from './commands/init';
import { installCommand } from './commands/install';
import { statusCommand } from './commands/status';
import { tailCommand } from './commands/tail';
import { uninstallCommand } from './commands/uninstall';
import { historyCommand } from './commands/history';
import { flushCommand } from './commands/flush';
import { baselineCommand } from './commands/baseline';
import { reportCommand } from './commands/report';
import { verifyCommand } from './commands/verify';
import { serveCommand } from './commands/serve';
import { forwardCommand } from './commands/forward';
import { maintainCommand } from './commands/maintain';

const COMMANDS: Command[] = [
  initCommand, installCommand, statusCommand, uninstallCommand, tailCommand, historyCommand, baselineCommand, flushCommand, reportCommand, verifyCommand,
  serveCommand, forwardCommand, maintainCommand,
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: auditlog <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run "auditlog <command> --help" for its options.',
    'Exit codes: 0 success, 1 failure or drift, 2 bad usage or config, 3 state unknown (history --at).',
  ].join('\n');
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(usage());
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`auditlog: unknown command "${name}"\n\n${usage()}`);
    return EXIT.USAGE;
  }
  let parsed;
  try {
    parsed = parse(command, rest);
  } catch (err) {
    io.err(`auditlog ${command.name}: ${(err as Error).message}\n\n${command.help}`);
    return EXIT.USAGE;
  }
  if (parsed.values.help) {
    io.out(command.help);
    return EXIT.OK;
  }
  try {
    return await command.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals, io);
  } catch (err) {
    if (err instanceof AuditLogError) {
      io.err(`auditlog ${command.name}: ${err.message}`);
      const usageErrors = ['UNSAFE_BIND', 'CONFIG_NOT_FOUND', 'CONFIG_LOAD_FAILED', 'CONFIG_INVALID', 'NO_DATABASE_URL', 'CONFIRMATION_REQUIRED', 'INVALID_ARGUMENT', 'OPTIONS_INVALID', 'TAMPER_EVIDENCE_DISABLED'];
      return usageErrors.includes(err.code) ? EXIT.USAGE : EXIT.FAILURE;
    }
    const pgErr = err as { message?: string; code?: string; detail?: string; hint?: string };
    const extra = [pgErr.detail, pgErr.hint].filter(Boolean).join('\n');
    io.err(`auditlog ${command.name}: ${pgErr.message ?? String(err)}${pgErr.code ? ` (SQLSTATE ${pgErr.code})` : ''}${extra ? `\n${extra}` : ''}`);
    return EXIT.FAILURE;
  }
}

if (require.main === module) {
  main(process.argv.slice(2), terminalIo()).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => { console.error(err); process.exitCode = EXIT.FAILURE; },
  );
}
