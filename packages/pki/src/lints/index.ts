import type { CertificateDraft } from '../draft.js';
import { PkiError } from '../errors.js';
import { profileRules } from '../profiles.js';
import {
  authorityKeyIdentifierMatchesIssuer,
  basicConstraintsMatchProfile,
  extKeyUsageWithinProfile,
  keyIsNotIssuerKey,
  keyUsageMatchesProfile,
  nameConstraintsOnlyOnCa,
  ocspNoCheckOnlyOnOcspSigners,
  revocationPointersPresent,
  subjectKeyIdentifierPresent,
} from './extensions.js';
import type { Lint, LintContext } from './lint.js';
import {
  namesAuthorized,
  namesWithinIssuerConstraints,
  subjectAltNamePresent,
  subjectAltNamesUnique,
} from './names.js';
import { serialHasEntropy, serialPositiveAndShort } from './serial.js';
import {
  validityOrdered,
  validityWholeSeconds,
  validityWithinIssuer,
  validityWithinPolicy,
  validityWithinProfile,
} from './validity.js';

export type { Lint, LintContext } from './lint.js';

/** Every lint, run on every draft; a profile's rules decide what each expects. */
export const LINTS: readonly Lint[] = [
  serialPositiveAndShort,
  serialHasEntropy,
  validityOrdered,
  validityWithinIssuer,
  validityWithinPolicy,
  validityWithinProfile,
  validityWholeSeconds,
  basicConstraintsMatchProfile,
  keyUsageMatchesProfile,
  extKeyUsageWithinProfile,
  subjectKeyIdentifierPresent,
  authorityKeyIdentifierMatchesIssuer,
  revocationPointersPresent,
  nameConstraintsOnlyOnCa,
  keyIsNotIssuerKey,
  ocspNoCheckOnlyOnOcspSigners,
  subjectAltNamePresent,
  namesAuthorized,
  subjectAltNamesUnique,
  namesWithinIssuerConstraints,
];

/** Runs every lint and returns the failures as `name: reason`. */
export function lintDraft(draft: CertificateDraft, ctx: Omit<LintContext, 'rules'>): string[] {
  const full: LintContext = { ...ctx, rules: profileRules(draft.profile) };
  const failures: string[] = [];
  for (const lint of LINTS) {
    const reason = lint.check(draft, full);
    if (reason !== null) failures.push(`${lint.name}: ${reason}`);
  }
  return failures;
}

/** Throws `lintFailed` unless the draft passes every lint. A failure is a bug in us, never the client. */
export function assertLintClean(draft: CertificateDraft, ctx: Omit<LintContext, 'rules'>): void {
  const failures = lintDraft(draft, ctx);
  if (failures.length > 0) throw new PkiError('lintFailed', `certificate failed lint: ${failures.join('; ')}`);
}
