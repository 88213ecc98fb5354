/**
 * When to renew and how long to wait after a failure. Pure functions of their inputs (the random
 * source is a parameter), so the schedule is tested by calling them, not by waiting.
 */

/** A lifetime fraction, checked: 0 < f < 1. */
export function checkFraction(value: number, what: string): number {
  if (!Number.isFinite(value) || value <= 0 || value >= 1)
    throw new RangeError(`${what} must be a fraction between 0 and 1, such as 0.66`);
  return value;
}

/**
 * The moment to renew a certificate: at `renewAt` of its lifetime, moved by up to `jitter` of the
 * lifetime either way, so a fleet started together does not renew together. Never before
 * notBefore, and always before the last tenth of the lifetime.
 */
export function renewalTime(
  cert: { notBefore: Date; notAfter: Date },
  opts: { renewAt: number; jitter: number; random(): number },
): Date {
  const start = cert.notBefore.getTime();
  const lifetime = cert.notAfter.getTime() - start;
  const fraction = opts.renewAt + (opts.random() * 2 - 1) * opts.jitter;
  const bounded = Math.min(Math.max(fraction, 0.05), 0.9);
  return new Date(start + Math.round(lifetime * bounded));
}

/**
 * RFC 9773 §4.2: a client picks a uniformly random moment in the suggested window; a window that
 * already ended means now.
 */
export function timeInWindow(window: { start: Date; end: Date }, now: Date, random: () => number): Date {
  const start = window.start.getTime();
  const end = Math.max(window.end.getTime(), start);
  if (end <= now.getTime()) return now;
  const from = Math.max(start, now.getTime());
  return new Date(from + Math.floor(random() * (end - from)));
}

/**
 * Exponential backoff with full jitter: attempt 1 waits up to `minMs`, each further attempt up to
 * twice as long, never more than `maxMs`; a random share of it, at least half, so retries of a
 * fleet spread out but still make progress.
 */
export function backoffDelay(attempt: number, opts: { minMs: number; maxMs: number; random(): number }): number {
  const ceiling = Math.min(opts.maxMs, opts.minMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (opts.random() * ceiling) / 2);
}
