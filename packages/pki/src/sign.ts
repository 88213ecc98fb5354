import type { CertificateDraft } from './draft.js';
import { encodeTbs, signTbs } from './encode.js';
import type { Signer } from './crypto.js';
import { assertLintClean } from './lints/index.js';
import type { LintContext } from './lints/lint.js';

/**
 * Lints a draft and, only if every lint passes, encodes and signs it. Callers that must record
 * the intent between the two (the authority) call `assertLintClean` and `signDraft` themselves.
 */
export function lintAndSign(draft: CertificateDraft, signer: Signer, ctx: Omit<LintContext, 'rules'>): Uint8Array {
  assertLintClean(draft, ctx);
  return signDraft(draft, signer);
}

/** Encodes and signs a draft that has already passed its lints. */
export function signDraft(draft: CertificateDraft, signer: Signer): Uint8Array {
  return signTbs(encodeTbs(draft, signer.algorithm), signer);
}
