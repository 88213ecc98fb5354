import type { AcmeProblemRecord } from './contracts/acme.js';
import type { ChangeCursor } from './contracts/revocations.js';

// Rules every engine applies the same way, whatever its SQL: one place, so the engines cannot
// drift apart on them (the contract suite checks the outcomes).

/** The revision a change cursor stands after (0 for null); a RangeError for anything not one. */
export function parseChangeCursor(cursor: ChangeCursor | null): number {
  if (cursor === null) return 0;
  const n = Number(cursor);
  if (!/^\d+$/.test(cursor) || !Number.isSafeInteger(n))
    throw new RangeError(`not a revocation change cursor: ${cursor}`);
  return n;
}

/** Whether a second revocation replaces the first one's reason: only keyCompromise does (RFC 5280 §5.3.1). */
export const reasonUpgrades = (before: string, after: string): boolean =>
  after === 'keyCompromise' && before !== 'keyCompromise';

/** A listing's limit as given, checked; undefined stays undefined (no limit). */
export function checkedLimit(limit: number | undefined): number | undefined {
  if (limit === undefined) return undefined;
  if (!Number.isSafeInteger(limit) || limit < 0)
    throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
  return limit;
}

/** An ACME problem as stored (JSON text), and back. */
export const problemText = (p: AcmeProblemRecord | null | undefined): string | null =>
  p == null ? null : JSON.stringify(p);
export const fromProblemText = (text: string | null): AcmeProblemRecord | null =>
  text === null ? null : (JSON.parse(text) as AcmeProblemRecord);
