// Public entry point: re-exports only. The public types live in interfaces.ts.
export * from './interfaces';
export { AuditLogError, type AuditLogErrorCode } from './errors';
export { defineConfig } from './config/define';
export { findConfigFile, loadConfigFile } from './config/load';
export { validateConfig } from './config/validate';
export { install, renderInstall, status, uninstall, type ConfigInput } from './install';
export {
  withAuditSession, currentAuditContext, getAuditContext, runWithAuditContext, serializeAuditContext,
} from './session';
export { auditPool, auditSettings, auditContextMiddleware, fastifyAuditContext } from './integrations';
export { MASK } from './generate';
export {
  history, allHistory, getForObject, getForObjects, getEntry, describeEntry, describeEntries,
  stateAt, isUnknownState, baseline, revert, logEvent, flush, report, searchHistory,
} from './history';
export { ExactNumber, isExactNumber, parseExactJson, stringifyExactJson } from './json';
export { subscribe } from './events';
export { seal, verify } from './security/verify';
export { auditViewer } from './viewer';
export { serveViewer } from './viewer/server';
export { forwardToNats, entrySubject, escapeSubjectToken, unescapeSubjectToken } from './forward';
export { maintain } from './maintain';
