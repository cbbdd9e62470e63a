// Capped exponential backoff with jitter, and a sleep that close() can cut short.

export interface BackoffOptions {
  /** First delay. Default 100 ms. */
  minDelayMs: number;
  /** Delays double up to this. Default 10 s. */
  maxDelayMs: number;
}

/** Delay before retry number `attempt` (1 = first retry): min·2^(attempt-1), capped, ±20 % jitter. */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const exp = Math.min(options.maxDelayMs, options.minDelayMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  // Jitter keeps many subscribers that failed together from retrying in lockstep.
  return Math.round(exp * (0.8 + Math.random() * 0.4));
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
