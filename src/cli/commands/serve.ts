import { Pool } from 'pg';
import { AuditLogError } from '../../errors';
import { DEFAULT_HOST, DEFAULT_PORT, serveViewer } from '../../viewer/server';
import {
  CONNECTION_HELP, CONNECTION_OPTIONS, EXIT, SCHEMA_HELP, SCHEMA_OPTION, auditSchema, databaseUrl, type Command,
} from '../common';

export { serveViewer };

export const serveCommand: Command = {
  name: 'serve',
  summary: 'a read-only web page over the log (list, filters, diffs, object history, live)',
  help: `Usage: auditlog serve [options]

Serves a read-only viewer of the audit log at http://127.0.0.1:4680 until stopped (Ctrl-C).
Every query runs in a READ ONLY transaction; it sees what the database role may see.

Options:
  --host HOST         address to listen on (default ${DEFAULT_HOST}); any address that is not
                      loopback needs a token
  --port PORT         port (default ${DEFAULT_PORT}; 0 picks a free one)
  --token TOKEN       required on every request (default: $AUDITLOG_VIEWER_TOKEN); open the
                      page once as http://HOST:PORT/?token=TOKEN (a cookie keeps it), or send
                      Authorization: Bearer TOKEN; at least 16 characters
${SCHEMA_HELP}
${CONNECTION_HELP}`,
  options: { ...CONNECTION_OPTIONS, ...SCHEMA_OPTION, host: { type: 'string' }, port: { type: 'string' }, token: { type: 'string' } },
  async run(values, positionals, io) {
    if (positionals.length > 0) {
      io.err(`auditlog serve: unexpected argument "${positionals[0]}"\n\n${serveCommand.help}`);
      return EXIT.USAGE;
    }
    const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535 || !/^\d+$/.test(String(values.port ?? port))) {
      throw new AuditLogError('INVALID_ARGUMENT', `--port must be a number from 0 to 65535, not ${JSON.stringify(values.port)}`);
    }
    const token = (values.token as string | undefined) ?? (io.env.AUDITLOG_VIEWER_TOKEN || undefined);
    const url = databaseUrl(values, io);
    const schema = await auditSchema(values, io);
    const pool = new Pool({
      connectionString: url.url, max: 4, application_name: 'auditlog-viewer', connectionTimeoutMillis: Math.round(url.connectTimeoutSeconds * 1000),
    });
    pool.on('error', (err) => io.err(`auditlog serve: idle connection lost (${err.message}); it is reopened on the next request`));
    let server;
    try {
      server = await serveViewer({ pool, schema, token, host: values.host as string | undefined, port, log: (line) => io.err(`auditlog serve: ${line}`) });
    } catch (err) {
      await pool.end();
      throw err;
    }
    io.out(`auditlog serve: ${server.url} (read-only${token === undefined ? '' : '; open it once with ?token=<token>'}); Ctrl-C stops`);
    const running = server;
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await running.close();
    await pool.end();
    return EXIT.OK;
  },
};
