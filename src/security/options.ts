// Install-time role overrides (CLI flags, install() options), checked like the config's roles.
import { invalid, roleNameProblem } from '../config/validate';
import type { RolesConfig } from '../interfaces';

/** The overrides that are set, validated; throws CONFIG_INVALID naming the bad one. */
export function validateRoleOverrides(roles: RolesConfig | undefined): RolesConfig {
  const out: RolesConfig = {};
  const problems: string[] = [];
  for (const key of ['owner', 'app', 'bypass'] as const) {
    const value = roles?.[key];
    if (value === undefined) continue;
    const problem = roleNameProblem(value, `roles.${key}`);
    if (problem) problems.push(problem);
    else out[key] = value;
  }
  if (roles?.appReadsLog !== undefined) out.appReadsLog = roles.appReadsLog;
  if (problems.length > 0) throw invalid('install options', problems);
  return out;
}
