// The OpenTelemetry link: the trace id of the active span, when @opentelemetry/api is installed.
// It is an optional peer dependency, loaded once on first use; without it this returns undefined.
import type { AuditContext } from '../interfaces';

interface SpanContextLike { traceId: string; traceFlags: number }
interface OtelApi {
  trace: { getActiveSpan(): { spanContext(): SpanContextLike } | undefined };
  isSpanContextValid?(ctx: SpanContextLike): boolean;
}

let api: OtelApi | null | undefined;

function load(): OtelApi | null {
  if (api === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      api = require('@opentelemetry/api') as OtelApi;
    } catch {
      api = null;
    }
  }
  return api;
}

/** The active span's trace id (32 hex digits), or undefined without OpenTelemetry or an active span. */
export function activeTraceId(): string | undefined {
  const otel = load();
  const span = otel?.trace.getActiveSpan();
  if (!span) return undefined;
  const sc = span.spanContext();
  if (otel!.isSpanContextValid ? !otel!.isSpanContextValid(sc) : !/^[0-9a-f]{32}$/.test(sc.traceId)) return undefined;
  return sc.traceId;
}

/** `ctx` with `data.trace_id` added from the active span, unless it already has one. */
export function withTraceId(ctx: AuditContext): AuditContext {
  if (ctx.data && typeof ctx.data.trace_id === 'string') return ctx;
  const traceId = activeTraceId();
  return traceId === undefined ? ctx : { ...ctx, data: { ...ctx.data, trace_id: traceId } };
}
