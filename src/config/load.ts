// Finds and loads auditlog.config.{ts,js,json}; shape validation happens in validate.ts.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createJiti } from 'jiti';
import { AuditLogError } from '../errors';

export const CONFIG_FILE_NAMES = ['auditlog.config.ts', 'auditlog.config.js', 'auditlog.config.json'];

/** The config file to use: `explicit` if given (must exist), else the first default name in `cwd`. */
export function findConfigFile(explicit: string | undefined, cwd = process.cwd()): string {
  if (explicit) {
    const file = path.resolve(cwd, explicit);
    if (!existsSync(file)) {
      throw new AuditLogError('CONFIG_NOT_FOUND', `config file ${file} does not exist`);
    }
    return file;
  }
  for (const name of CONFIG_FILE_NAMES) {
    const file = path.join(cwd, name);
    if (existsSync(file)) return file;
  }
  throw new AuditLogError(
    'CONFIG_NOT_FOUND',
    `no ${CONFIG_FILE_NAMES.join(', ')} in ${cwd}: run "auditlog init" to write one, or pass --config <file>`,
  );
}

/** Loads the raw (unvalidated) config object from a .ts, .js or .json file. */
export async function loadConfigFile(file: string): Promise<unknown> {
  try {
    if (file.endsWith('.json')) return JSON.parse(readFileSync(file, 'utf8'));
    const jiti = createJiti(__filename, { moduleCache: false });
    return await jiti.import(file, { default: true });
  } catch (err) {
    throw new AuditLogError('CONFIG_LOAD_FAILED', `could not load ${file}: ${(err as Error).message}`, { cause: err });
  }
}
