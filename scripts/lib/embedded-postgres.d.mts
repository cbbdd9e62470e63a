export interface EmbeddedServer {
  connectionString: string;
  stop(): Promise<void>;
}
export function startEmbeddedPostgres(options?: { log?: (message: string) => void; durable?: boolean }): Promise<EmbeddedServer>;
