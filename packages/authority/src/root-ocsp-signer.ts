import { Buffer } from 'node:buffer';
import {
  createCsr,
  exportPrivateKey,
  generateKeyPair,
  isIssuedBy,
  parseCertificate,
  parseCsr,
  readCertificate,
  type CertificateInfo,
} from '@shortleaf/pki';
import { AuthorityError } from './errors.js';
import { ocspSignerSealContext } from './ocsp-signers.js';
import type { AuthorityStore, Clock, KeySealer } from './ports.js';

/**
 * Generates, inside the database and sealed, the key of the OCSP responder the root delegates to
 * answer for this intermediate's own status, and returns its CSR for the offline ceremony.
 */
export async function createRootOcspSignerKey(
  store: AuthorityStore,
  sealer: KeySealer,
  clock: Clock,
  opts: { id: string; issuerName: string },
): Promise<Uint8Array> {
  const issuer = await store.getIssuerByName(opts.issuerName);
  if (issuer === null) throw new AuthorityError('issuerMismatch', `no intermediate named ${opts.issuerName}`);
  const { privateKey } = generateKeyPair('EC-P256');
  const csr = createCsr(privateKey, { commonName: 'Shortleaf Root OCSP Responder', organization: 'Shortleaf' }, []);
  const sealedKey = await sealer.seal(exportPrivateKey(privateKey), ocspSignerSealContext(opts.id));
  await store.revocations.createOcspSigner({
    id: opts.id,
    issuerId: issuer.id,
    sealedKey,
    csrDer: csr,
    createdAt: clock.now(),
  });
  return csr;
}

/**
 * Accepts the root-delegated responder certificate: issued by the root that issued the
 * intermediate, for the newest sealed key (`intermediate csr --ocsp-out` at the
 * first ceremony, `intermediate ocsp-csr` at each one after).
 */
export async function importRootOcspSigner(
  store: AuthorityStore,
  opts: { issuerName: string; certificatePem: string; root: CertificateInfo },
): Promise<CertificateInfo> {
  const issuer = await store.getIssuerByName(opts.issuerName);
  const row = issuer === null ? null : await store.revocations.getOcspSigner(issuer.id);
  if (row === null)
    throw new AuthorityError(
      'issuerMismatch',
      `no OCSP signer key for intermediate ${opts.issuerName}: run \`shortleaf intermediate ocsp-csr\` first`,
    );
  const cert = readCertificate(opts.certificatePem);
  if (cert.isCa || !isIssuedBy(cert, opts.root))
    throw new AuthorityError(
      'issuerMismatch',
      'the OCSP signer certificate is not an end-entity certificate issued by the root',
    );
  if (issuer!.certDer !== null && !isIssuedBy(parseCertificate(issuer!.certDer), opts.root))
    throw new AuthorityError(
      'issuerMismatch',
      `the root given did not issue intermediate ${opts.issuerName}, so its responder cannot answer for it`,
    );
  if (!Buffer.from(parseCsr(row.csrDer).publicKey.spki).equals(cert.publicKey.spki)) {
    throw new AuthorityError(
      'issuerMismatch',
      'the OCSP signer certificate is not for the key sealed in this database',
    );
  }
  await store.revocations.setOcspSignerCertificate(row.id, cert.der);
  return cert;
}

/**
 * Warnings about the responder the root delegated for an intermediate's own status: it cannot be
 * revoked (ocsp-nocheck) so it is short-lived, and once it lapses, verifiers that ask OCSP about
 * the intermediate (NSS checking the whole chain) refuse every chain through it. The offline
 * ceremony must re-sign it before then.
 */
export function rootOcspSignerWarnings(
  issuerName: string,
  certificate: { notAfter: Date } | null,
  now: Date,
  warnBeforeMs: number,
): string[] {
  if (certificate === null) return [];
  const left = certificate.notAfter.getTime() - now.getTime();
  const renew = `run \`shortleaf intermediate ocsp-csr --name ${issuerName}\`, \`shortleaf root sign-ocsp\` offline and \`shortleaf intermediate ocsp-import\``;
  if (left <= 0)
    return [
      `the root-delegated OCSP responder of ${issuerName} expired at ${certificate.notAfter.toISOString()}: OCSP requests about the intermediate itself fail; ${renew}`,
    ];
  if (left <= warnBeforeMs)
    return [
      `the root-delegated OCSP responder of ${issuerName} expires at ${certificate.notAfter.toISOString()} (in ${Math.ceil(left / 86_400_000)} d): ${renew}`,
    ];
  return [];
}
