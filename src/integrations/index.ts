// Integrations: the wrapped pool, HTTP middleware and the OpenTelemetry link. They build on
// src/session (the ambient context store); the core never imports this room.
export { auditPool, auditSettings } from './pool';
export { auditContextMiddleware, fastifyAuditContext } from './middleware';
