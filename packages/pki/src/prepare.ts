import type { SignatureAlgorithm } from './algorithms.js';
import type { Signer } from './crypto.js';
import type { CertificateDraft } from './draft.js';
import { encodeTbs, signTbs } from './encode.js';
import { PkiError } from './errors.js';
import { lintDraft } from './lints/index.js';
import type { LintContext } from './lints/lint.js';
import { TBS_LINTS } from './lints/tbs.js';
import { readTbsCertificate } from './tbs-certificate.js';

/** To-be-signed certificate bytes that passed every lint, and the only thing `signPrepared` signs. */
export interface PreparedCertificate {
  /** DER TBSCertificate: record these, then sign exactly these. */
  tbs: Uint8Array;
  /** The draft as parsed back from `tbs`, which is what was linted. */
  linted: CertificateDraft;
}

/**
 * Lints to-be-signed bytes: parses them with an independent parser (`tbs_parses` when it cannot),
 * runs the byte-level lints (DER, version, algorithm, extensions, correspondence with `intended`)
 * and then every profile lint on what was parsed. Returns failures as `name: reason`.
 */
export function lintTbs(
  tbs: Uint8Array,
  intended: CertificateDraft,
  algorithm: SignatureAlgorithm,
  ctx: Omit<LintContext, 'rules'>,
): { failures: string[]; linted: CertificateDraft | null } {
  let view;
  try {
    view = readTbsCertificate(tbs, intended);
  } catch (cause) {
    // RFC 5280 §4.1: what cannot be parsed cannot be judged, nor relied on by anyone.
    return { failures: [`tbs_parses: the TBSCertificate does not parse: ${(cause as Error).message}`], linted: null };
  }
  const failures: string[] = [];
  for (const lint of TBS_LINTS) {
    const reason = lint.check(view, { tbs, intended, algorithm });
    if (reason !== null) failures.push(`${lint.name}: ${reason}`);
  }
  failures.push(...lintDraft(view.draft, ctx));
  return { failures, linted: view.draft };
}

/**
 * Boulder's Prepare: encodes the draft once, parses the bytes back and lints what was parsed.
 * Throws `lintFailed` (a bug in us, never the client) or returns the bytes to record and sign.
 */
export function prepareCertificate(
  draft: CertificateDraft,
  signer: Signer,
  ctx: Omit<LintContext, 'rules'>,
): PreparedCertificate {
  const tbs = encodeTbs(draft, signer.algorithm);
  const { failures, linted } = lintTbs(tbs, draft, signer.algorithm, ctx);
  if (failures.length > 0 || linted === null)
    throw new PkiError('lintFailed', `certificate failed lint: ${failures.join('; ')}`);
  return { tbs, linted };
}

/** Boulder's Issue: signs exactly the prepared bytes, nothing re-encoded. */
export function signPrepared(prepared: PreparedCertificate, signer: Signer): Uint8Array {
  return signTbs(prepared.tbs, signer);
}
