import { Buffer } from 'node:buffer';
import { createCsr, exportPrivateKey, generateKeyPair, isIssuedBy, parseCsr, readCertificate, type CertificateInfo } from '@shortleaf/pki';
import { AuthorityError } from './errors.js';
import { ocspSignerSealContext } from './ocsp-signers.js';
import type { AuthorityStore, Clock, KeySealer } from './ports.js';

/**
 * Generates, inside the database and sealed, the key of the OCSP responder the root delegates to
 * answer for this intermediate's own status, and returns its CSR for the offline ceremony.
 */
export async function createRootOcspSignerKey(store: AuthorityStore, sealer: KeySealer, clock: Clock, opts: { id: string; issuerName: string }): Promise<Uint8Array> {
  const issuer = await store.getIssuerByName(opts.issuerName);
  if (issuer === null) throw new AuthorityError('issuerMismatch', `no intermediate named ${opts.issuerName}`);
  const { privateKey } = generateKeyPair('EC-P256');
  const csr = createCsr(privateKey, { commonName: 'Shortleaf Root OCSP Responder', organization: 'Shortleaf' }, []);
  const sealedKey = await sealer.seal(exportPrivateKey(privateKey), ocspSignerSealContext(opts.id));
  await store.revocations.createOcspSigner({ id: opts.id, issuerId: issuer.id, sealedKey, csrDer: csr, createdAt: clock.now() });
  return csr;
}

/** Accepts the root-delegated responder certificate: issued by the root, for the sealed key. */
export async function importRootOcspSigner(store: AuthorityStore, opts: { issuerName: string; certificatePem: string; root: CertificateInfo }): Promise<CertificateInfo> {
  const issuer = await store.getIssuerByName(opts.issuerName);
  const row = issuer === null ? null : await store.revocations.getOcspSigner(issuer.id);
  if (row === null) throw new AuthorityError('issuerMismatch', `no OCSP signer key for intermediate ${opts.issuerName}: run \`shortleaf intermediate csr --ocsp-out\` first`);
  const cert = readCertificate(opts.certificatePem);
  if (cert.isCa || !isIssuedBy(cert, opts.root)) throw new AuthorityError('issuerMismatch', 'the OCSP signer certificate is not an end-entity certificate issued by the root');
  if (!Buffer.from(parseCsr(row.csrDer).publicKey.spki).equals(cert.publicKey.spki)) {
    throw new AuthorityError('issuerMismatch', 'the OCSP signer certificate is not for the key sealed in this database');
  }
  await store.revocations.setOcspSignerCertificate(row.id, cert.der);
  return cert;
}
