import { formatDuration, parseDuration } from './duration.js';
import { AuthorityError } from './errors.js';
import type { AuthorityStore } from './ports.js';

/**
 * At most `max` certificates per `periodMs` (a sliding window) for one identity of a provisioner
 * whose tokens are reusable bearer tokens (`--max-certificates-per-identity 20/1h`). It bounds what
 * one leaked token is worth: however often it is replayed before it expires, it gets no more.
 */
export interface IdentityLimit {
  max: number;
  periodMs: number;
}

/** What a type that sets no limit of its own allows: a few bootstraps an hour leave plenty of room. */
export const DEFAULT_IDENTITY_LIMIT: IdentityLimit = { max: 100, periodMs: 60 * 60 * 1000 };

const MAX_PERIOD_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * Parses `N/PERIOD` (`20/1h`, `500/1d`) or `none` (no limit). N is 1 to 1,000,000 and PERIOD 1s
 * to 30d: a window longer than that would keep a row count of months on every issuance.
 */
export function parseIdentityLimit(text: unknown): IdentityLimit | null {
  const bad = (why: string): never => {
    throw new AuthorityError('badProvisionerOptions', `--max-certificates-per-identity: ${why}`);
  };
  if (text === 'none') return null;
  if (typeof text !== 'string') return bad('write N/PERIOD (e.g. 20/1h) or none');
  const match = /^(\d{1,7})\/(.+)$/.exec(text);
  if (match === null) return bad(`${JSON.stringify(text)} is not N/PERIOD (e.g. 20/1h) or none`);
  const max = Number(match[1]);
  if (max < 1 || max > 1_000_000) bad('N must be 1 to 1000000 (none for no limit)');
  let periodMs = 0;
  try {
    periodMs = parseDuration(match[2]!);
  } catch (cause) {
    bad((cause as Error).message);
  }
  if (periodMs < 1000 || periodMs > MAX_PERIOD_MS) bad('PERIOD must be 1s to 30d');
  return { max, periodMs };
}

/** How a limit is written back (`provisioner list`, messages). */
export function formatIdentityLimit(limit: IdentityLimit | null): string {
  return limit === null ? 'none' : `${limit.max}/${formatDuration(limit.periodMs)}`;
}

/**
 * Refuses with `rateLimited` (and when to retry) a certificate that would be the identity's
 * `max + 1`th from this provisioner in the window. Counted in the database, not in memory, so the
 * limit holds across every instance on one PostgreSQL. The count is read before the reservation,
 * not in its transaction: N requests racing at the edge may overshoot by N-1, as ACME's order
 * limit does; the bound stays proportional to what an attacker can send at once.
 */
export async function checkIdentityLimit(
  store: Pick<AuthorityStore, 'countCertificatesSince'>,
  grant: { provisioner: string; identity: string; limit: IdentityLimit },
  now: Date,
): Promise<void> {
  const { provisioner, identity, limit } = grant;
  const since = new Date(now.getTime() - limit.periodMs);
  const { count, oldest } = await store.countCertificatesSince(provisioner, identity, since);
  if (count < limit.max) return;
  // The window slides: room comes back when its oldest certificate leaves it.
  const freeAt = (oldest ?? now).getTime() + limit.periodMs;
  const retryAfterS = Math.max(1, Math.ceil((freeAt - now.getTime()) / 1000));
  throw new AuthorityError(
    'rateLimited',
    `${identity} got ${count} certificates from provisioner ${provisioner} in the last ${formatDuration(limit.periodMs)}; the limit is ${formatIdentityLimit(limit)} (--max-certificates-per-identity). Retry in ${retryAfterS}s; renewing over mutual TLS is not limited`,
    { retryAfterS },
  );
}
