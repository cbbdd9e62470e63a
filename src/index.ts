// Public entry point: re-exports only. The public types live in interfaces.ts.
export * from './interfaces';
export { AuditLogError, type AuditLogErrorCode } from './errors';
export { defineConfig } from './config/define';
export { findConfigFile, loadConfigFile } from './config/load';
export { validateConfig } from './config/validate';
export { install, renderInstall, status, uninstall, type ConfigInput } from './install';
export { withAuditSession, currentAuditContext } from './session';
export { MASK } from './generate';
export {
  history, allHistory, getForObject, getForObjects, getEntry, describeEntry, describeEntries,
  stateAt, isUnknownState, baseline, revert, logEvent, flush, report,
} from './history';
export { ExactNumber, isExactNumber, parseExactJson, stringifyExactJson } from './json';
export { subscribe } from './events';
export { seal, verify } from './security/verify';
