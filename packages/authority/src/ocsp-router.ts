import { MAX_OCSP_CERT_IDS, PkiError, parseOcspRequest, type CertId } from '@shortleaf/pki';
import { requestKey } from './ocsp-cache.js';
import type { OcspAnswer } from './ocsp-responder.js';

/** What the router needs of each intermediate's responder (`createOcspResponder`). */
export interface RoutedResponder {
  lookupKey(key: string | null): OcspAnswer | null;
  respond(der: Uint8Array): Promise<OcspAnswer>;
  serves(certId: CertId): boolean;
}

/**
 * One OCSP endpoint for several intermediates: a retired one keeps answering for the certificates
 * it issued. The request's first CertID (issuer name and key hashes, RFC 6960 §4.1.1) picks the
 * responder, which answers `unauthorized` if the others are not all its own; what none serves
 * goes to the active one, which answers `unauthorized` or `unknown` as a lone responder would. A
 * repeated request is still answered from a responder's cache without parsing; the active
 * intermediate's cache is tried first.
 */
export function createOcspRouter(responders: () => readonly RoutedResponder[]) {
  function lookup(der: Uint8Array): OcspAnswer | null {
    const key = requestKey(der);
    if (key === null) return null;
    for (const r of responders()) {
      const answer = r.lookupKey(key);
      if (answer !== null) return answer;
    }
    return null;
  }

  async function respond(der: Uint8Array): Promise<OcspAnswer> {
    const all = responders();
    const active = all[0];
    if (active === undefined) throw new Error('no OCSP responder is running');
    if (all.length === 1) return active.respond(der);
    const fast = lookup(der);
    if (fast !== null) return fast;
    let certId: CertId | undefined;
    try {
      certId = parseOcspRequest(der, { maxCertIds: MAX_OCSP_CERT_IDS }).certIds[0];
    } catch (err) {
      // The active responder turns the same bytes into `malformedRequest`.
      if (!(err instanceof PkiError)) throw err;
    }
    const chosen = certId === undefined ? active : (all.find((r) => r.serves(certId)) ?? active);
    return chosen.respond(der);
  }

  return { lookup, respond };
}
