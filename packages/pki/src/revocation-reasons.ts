import { PkiError } from './errors.js';

/** CRLReason names (RFC 5280 §5.3.1) that a revocation may carry; removeFromCRL is deliberately absent. */
export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'cACompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'privilegeWithdrawn'
  | 'aACompromise';

interface ReasonRow {
  name: RevocationReason;
  /** The ENUMERATED value of CRLReason; 7 is unused and 8 (removeFromCRL) is never accepted. */
  code: number;
}

// One row per reason, as RFC 5280 §5.3.1 numbers them.
const ROWS: readonly ReasonRow[] = [
  { name: 'unspecified', code: 0 },
  { name: 'keyCompromise', code: 1 },
  { name: 'cACompromise', code: 2 },
  { name: 'affiliationChanged', code: 3 },
  { name: 'superseded', code: 4 },
  { name: 'cessationOfOperation', code: 5 },
  { name: 'certificateHold', code: 6 },
  { name: 'privilegeWithdrawn', code: 9 },
  { name: 'aACompromise', code: 10 },
];

export const REVOCATION_REASONS: readonly RevocationReason[] = ROWS.map((r) => r.name);

const REMOVE_FROM_CRL =
  'removeFromCRL (8) only appears in delta CRLs to undo a certificateHold, and is never accepted as a revocation reason';

/** The CRLReason code for a reason name; throws `badRevocationReason` for anything else. */
export function reasonCode(name: string): number {
  const row = ROWS.find((r) => r.name === name);
  if (row !== undefined) return row.code;
  if (name === 'removeFromCRL') throw new PkiError('badRevocationReason', REMOVE_FROM_CRL);
  throw new PkiError(
    'badRevocationReason',
    `${JSON.stringify(name)} is not a revocation reason (use one of ${REVOCATION_REASONS.join(', ')})`,
  );
}

/** The reason name for a CRLReason code; throws `badRevocationReason` for 7, 8 and unknown codes. */
export function reasonName(code: number): RevocationReason {
  const row = ROWS.find((r) => r.code === code);
  if (row !== undefined) return row.name;
  if (code === 8) throw new PkiError('badRevocationReason', REMOVE_FROM_CRL);
  throw new PkiError('badRevocationReason', `${code} is not a CRLReason code (RFC 5280 §5.3.1)`);
}
