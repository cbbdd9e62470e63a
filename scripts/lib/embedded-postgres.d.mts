// Types for embedded-postgres.mjs, so TypeScript scripts can import it.
export interface EmbeddedServer {
  connectionString: string;
  stop(): Promise<void>;
}
export function startEmbeddedPostgres(options?: { log?: (message: string) => void; durable?: boolean }): Promise<EmbeddedServer>;
