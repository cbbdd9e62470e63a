import type { AuditConfig } from '../interfaces';

/** Types an auditlog.config.ts; returns its argument unchanged. */
export function defineConfig(config: AuditConfig): AuditConfig {
  return config;
}
