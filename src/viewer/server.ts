// serveViewer(): the viewer on its own node:http server (what `auditlog serve` runs). Safe by
// default: loopback only unless a token is set.
import { createServer } from 'node:http';
import { isIP } from 'node:net';
import { AuditLogError } from '../errors';
import type { ServeOptions, ViewerServer } from '../interfaces';
import { auditViewer } from './index';

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 4680;

/** 127.0.0.0/8, ::1 and "localhost" only reach this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped !== null && mapped[1]!.startsWith('127.');
}

export async function serveViewer(options: ServeOptions): Promise<ViewerServer> {
  const host = options.host ?? DEFAULT_HOST;
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new AuditLogError('INVALID_ARGUMENT', `port must be 0 to 65535, not ${String(port)}`);
  if (!isLoopback(host) && options.token === undefined) {
    throw new AuditLogError('UNSAFE_BIND',
      `refusing to serve the audit log on ${host} without a token: anyone who can reach it could read the log. Pass --token (or set AUDITLOG_VIEWER_TOKEN), or bind to 127.0.0.1`);
  }
  const viewer = auditViewer(options);
  const server = createServer((req, res) => viewer(req, res));
  // Slow or idle clients must not keep sockets forever; the live stream writes every 5 s.
  server.headersTimeout = 20_000;
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new AuditLogError('INVALID_ARGUMENT', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const actual = typeof address === 'object' && address !== null ? address.port : port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${actual}/`,
    port: actual,
    async close() {
      await viewer.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
