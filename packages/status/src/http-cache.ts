import type { Context } from 'hono';

/** Seconds until `until`, never negative: a max-age never outlives the data's nextUpdate. */
export function secondsUntil(until: Date, now: Date, cap = Number.POSITIVE_INFINITY): number {
  return Math.max(0, Math.min(cap, Math.floor((until.getTime() - now.getTime()) / 1000)));
}

/**
 * Answers a conditional GET: true (and the caller sends 304) when the client's ETag matches, or,
 * without If-None-Match, when nothing changed since If-Modified-Since (RFC 9110 §13.1).
 */
export function notModified(c: Context, etag: string, lastModified: Date): boolean {
  return isNotModified(c.req.header('if-none-match'), c.req.header('if-modified-since'), etag, lastModified);
}

/** The same decision from the raw header values. */
export function isNotModified(
  ifNoneMatch: string | undefined,
  ifModifiedSince: string | undefined,
  etag: string,
  lastModified: Date,
): boolean {
  if (ifNoneMatch !== undefined)
    return ifNoneMatch.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}` || t.trim() === '*');
  if (ifModifiedSince === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && Math.floor(lastModified.getTime() / 1000) * 1000 <= since;
}
