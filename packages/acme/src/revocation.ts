import { PkiError, parseCertificate, reasonName, type CertificateInfo, type RevocationReason } from '@shortleaf/pki';
import type { JWK } from 'jose';
import type { AcmeContext, AcmeServices } from './context.js';
import { AcmeError } from './errors.js';
import { thumbprint } from './jws.js';

function revocationReason(value: unknown): RevocationReason {
  if (value === undefined) return 'unspecified';
  if (typeof value !== 'number' || !Number.isInteger(value))
    throw new AcmeError('badRevocationReason', '"reason" must be a CRLReason code (RFC 5280 §5.3.1)');
  try {
    return reasonName(value);
  } catch (cause) {
    throw new AcmeError('badRevocationReason', (cause as Error).message, { cause });
  }
}

/**
 * revokeCert (RFC 8555 §7.6): allowed to the account that ordered the certificate (`kid`) or to
 * the holder of the certificate's own key (`jwk` equal to its public key). The revocation goes
 * through the same revoker as the REST API, so OCSP answers revoked at once and the CRL follows.
 */
export async function revokeCert(c: AcmeContext, s: AcmeServices): Promise<Response> {
  const payload = c.get('payload');
  if (payload === null || typeof payload.certificate !== 'string' || !/^[A-Za-z0-9_-]+$/.test(payload.certificate)) {
    throw new AcmeError('malformed', 'revokeCert needs "certificate": the base64url DER of the certificate');
  }
  const reason = revocationReason(payload.reason);
  const der = new Uint8Array(Buffer.from(payload.certificate, 'base64url'));
  let cert: CertificateInfo;
  try {
    cert = parseCertificate(der);
  } catch (cause) {
    if (cause instanceof PkiError)
      throw new AcmeError('malformed', `the certificate cannot be parsed: ${cause.message}`, { cause });
    throw cause;
  }
  const row = await s.certificates.getCertificate(cert.serial);
  if (row === null || row.der === null || !Buffer.from(row.der).equals(der))
    throw new AcmeError('notFound', `certificate ${cert.serial} was not issued by this CA`);

  const account = c.get('account');
  let actor: string;
  // RFC 8555 §7.6: signed with the certificate's key proves it is held; the ordering account does not.
  let keyProven = false;
  if (account !== null) {
    const order = await s.store.getOrderByCertificate(row.serial);
    if (order === null || order.accountId !== account.id)
      throw new AcmeError(
        'unauthorized',
        'this account did not order that certificate; sign with the certificate key or the ordering account',
      );
    actor = `acme-account:${account.id}`;
  } else {
    const certJwk = cert.publicKey.keyObject.export({ format: 'jwk' }) as JWK;
    if ((await thumbprint(certJwk)) !== (await thumbprint(c.get('jws').header.jwk!))) {
      throw new AcmeError('unauthorized', "the request is signed with a key that is not the certificate's");
    }
    actor = `certificate-key:${row.serial}`;
    keyProven = true;
  }
  // A refusal (badRevocationReason…) becomes its ACME type in the app's error handler (errors.ts).
  const result = await s.revoke({
    serial: row.serial,
    reason,
    actor,
    requester: `acme:${c.get('provisioner').name}`,
    keyProven,
  });
  // RFC 8555 §7.6 alreadyRevoked, except that keyCompromise (1) may replace an earlier reason:
  // RFC 5280 §5.3.1 lets it change, and Boulder accepts it from the key's holder.
  if (result.alreadyRevoked)
    throw new AcmeError(
      'alreadyRevoked',
      `certificate ${row.serial} was already revoked (${result.reason}) at ${result.revokedAt.toISOString()}; only keyCompromise (1) can replace that reason`,
    );
  return c.body(null, 200);
}
