import type { CertificateDraft } from './draft.js';
import { encodeTbs, signTbs } from './encode.js';
import type { Signer } from './crypto.js';
import type { LintContext } from './lints/lint.js';
import { prepareCertificate, signPrepared } from './prepare.js';

/**
 * Encodes a draft, lints the bytes as parsed back and, only if every lint passes, signs exactly
 * those bytes. Callers that must record the intent between the two (the authority) call
 * `prepareCertificate` and `signPrepared` themselves.
 */
export function lintAndSign(draft: CertificateDraft, signer: Signer, ctx: Omit<LintContext, 'rules'>): Uint8Array {
  return signPrepared(prepareCertificate(draft, signer, ctx), signer);
}

/** Encodes and signs a draft with no lint at all: tests use it to forge what our lints refuse. */
export function signDraft(draft: CertificateDraft, signer: Signer): Uint8Array {
  return signTbs(encodeTbs(draft, signer.algorithm), signer);
}
