import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EXIT, type Command } from '../common';

const TS_TEMPLATE = `import { defineConfig } from 'pg-auditlog';

// pg-auditlog configuration. After editing, run \`npx auditlog install\` (review the SQL first
// with \`npx auditlog install --dry-run\`), and again after any ALTER TABLE on an audited table.
export default defineConfig({
  // Schema that holds the log (auditlog.log_entry) and the generated capture functions.
  schema: 'auditlog',

  // Columns never recorded, on any table that has them.
  excludeFields: ['updated_at'],

  // 'statement' (default): one trigger call per statement, fast on bulk writes; 'row': one per row.
  // mode: 'statement',

  // Who owns the log and who only writes through it (see docs/security.md).
  // roles: { owner: 'auditlog_owner', app: 'app_user' },
  // tamperEvidence: true,   // hash-chain the log; check it with "auditlog verify"
  // tenantIsolation: true,  // a role reads only the entries of the tenant set in its transaction

  // Audit every table of these schemas (each needs a primary key), except those listed.
  // includeAll: { schemas: ['public'], except: ['public.sessions'] },

  // Tables to audit, keyed by "schema.table" (SQL syntax: quote mixed-case names, public."Users").
  tables: {
    // 'public.users': {
    //   exclude: ['last_login'],              // never compared nor stored
    //   mask: ['ssn'],                        // stored as "[masked]"; a change still shows
    //   mapping: { email: 'E-mail address' }, // display names for readers of the log
    //   objectRepr: 'email',                  // column copied into object_repr
    //   snapshot: true,                       // also store the full (masked) row
    // },
    // 'public.order_items': { include: ['qty', 'price'], actions: ['update', 'delete'] },
  },
});
`;

const JSON_TEMPLATE = `${JSON.stringify({
  schema: 'auditlog',
  excludeFields: ['updated_at'],
  tables: { 'public.users': { exclude: ['last_login'], mask: ['ssn'] } },
}, null, 2)}\n`;

export function configTemplate(file: string): string {
  if (file.endsWith('.json')) return JSON_TEMPLATE;
  if (file.endsWith('.js')) {
    return TS_TEMPLATE
      .replace("import { defineConfig } from 'pg-auditlog';", "const { defineConfig } = require('pg-auditlog');")
      .replace('export default defineConfig(', 'module.exports = defineConfig(');
  }
  return TS_TEMPLATE;
}

export const initCommand: Command = {
  name: 'init',
  summary: 'write a commented auditlog.config.ts',
  help: `Usage: auditlog init [options]

Writes a commented config file to start from. The format follows the file name: .ts (default),
.js or .json.

Options:
  --config FILE       where to write it (default: auditlog.config.ts)
  --force             overwrite an existing file
  -h, --help          show this help`,
  options: { config: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  async run(values, _positionals, io) {
    const file = path.resolve(io.cwd, (values.config as string | undefined) ?? 'auditlog.config.ts');
    if (!/\.(ts|js|json)$/.test(file)) {
      io.err(`${file}: the config file must end in .ts, .js or .json`);
      return EXIT.USAGE;
    }
    if (existsSync(file) && !values.force) {
      io.err(`${file} already exists; pass --force to overwrite it`);
      return EXIT.FAILURE;
    }
    writeFileSync(file, configTemplate(file));
    io.out(`wrote ${file}\nnext: list your tables in it, then run: npx auditlog install --dry-run`);
    return EXIT.OK;
  },
};
