import type { CertificateDraft, IssuerInfo } from '../draft.js';
import type { SubjectName } from '../names.js';
import type { ProfileRules } from '../profiles.js';

/** What a lint may compare a draft with, besides the draft itself. */
export interface LintContext {
  rules: ProfileRules;
  /** The issuing CA; null for a self-signed root. */
  issuer: IssuerInfo | null;
  /** The names the credential authorised; every SAN must be one of them. */
  authorizedNames?: readonly SubjectName[];
  /** The longest lifetime the policy allows, in milliseconds. */
  maxLifetimeMs?: number;
}

/** One concern checked before signing; `check` returns null when the draft passes, else the reason. */
export interface Lint {
  name: string;
  check(draft: CertificateDraft, ctx: LintContext): string | null;
}
