import { parseCertificate, serialToHex } from '@shortleaf/pki';
import type { AcmeContext, AcmeServices } from './context.js';
import { AcmeError } from './errors.js';

/** An ARI certificate identifier (RFC 9773 §4.1): `base64url(AKI keyIdentifier).base64url(serial)`. */
export interface CertId {
  text: string;
  keyIdentifier: Uint8Array;
  serial: string;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

export function parseCertId(text: unknown): CertId {
  if (typeof text !== 'string' || text.length > 200)
    throw new AcmeError('malformed', 'a certificate identifier is base64url(keyIdentifier).base64url(serial)');
  const [aki, serial, extra] = text.split('.');
  if (aki === undefined || serial === undefined || extra !== undefined || !B64URL.test(aki) || !B64URL.test(serial)) {
    throw new AcmeError(
      'malformed',
      `${JSON.stringify(text.slice(0, 100))} is not a certificate identifier: base64url(keyIdentifier).base64url(serial), unpadded`,
    );
  }
  const serialBytes = Buffer.from(serial, 'base64url');
  if (serialBytes.length === 0 || serialBytes.length > 20)
    throw new AcmeError('malformed', 'the serial in the certificate identifier has the wrong length');
  return {
    text,
    keyIdentifier: new Uint8Array(Buffer.from(aki, 'base64url')),
    serial: serialToHex(new Uint8Array(serialBytes)),
  };
}

/**
 * Finds the certificate a CertID names, if we issued it: the serial must be ours and the
 * certificate's Authority Key Identifier must match, so an identifier cannot name our serial
 * under another issuer.
 */
export async function certificateForCertId(s: Pick<AcmeServices, 'certificates'>, id: CertId) {
  const row = await s.certificates.getCertificate(id.serial);
  if (row === null || row.der === null) return null;
  const aki = parseCertificate(row.der).authorityKeyIdentifier;
  if (aki === null || !Buffer.from(aki).equals(id.keyIdentifier)) return null;
  return row;
}

/** The share of a certificate's lifetime the suggested window is centred on, and its width. */
const WINDOW_CENTRE = 2 / 3;
const WINDOW_WIDTH = 1 / 10;
const MAX_RETRY_AFTER_S = 6 * 3600;

/**
 * renewalInfo (RFC 9773 §4.2): unauthenticated and cacheable. The suggested window is centred at
 * two-thirds of the lifetime; for a revoked certificate it lies in the past, so clients renew at
 * once. `Retry-After` tells a client when to ask again: a tenth of the lifetime, at most 6 h.
 */
export async function renewalInfo(c: AcmeContext, s: AcmeServices): Promise<Response> {
  const id = parseCertId(c.req.param('certid'));
  const row = await certificateForCertId(s, id);
  if (row === null) throw new AcmeError('notFound', `no certificate ${id.text} was issued here`);
  const lifetime = row.notAfter.getTime() - row.notBefore.getTime();
  const now = s.clock.now().getTime();
  const revoked = await s.certificates.revocations.get(row.serial);
  let start: number;
  let end: number;
  if (revoked !== null) {
    end = Math.min(revoked.revokedAt.getTime(), now) - 60_000;
    start = end - 3_600_000;
  } else {
    const centre = row.notBefore.getTime() + lifetime * WINDOW_CENTRE;
    start = centre - (lifetime * WINDOW_WIDTH) / 2;
    end = centre + (lifetime * WINDOW_WIDTH) / 2;
  }
  const retryAfter = Math.max(60, Math.min(MAX_RETRY_AFTER_S, Math.floor(lifetime / 10_000)));
  c.header('Retry-After', String(retryAfter));
  c.header('Cache-Control', `public, max-age=${retryAfter}`);
  const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  return c.json({ suggestedWindow: { start: iso(start), end: iso(end) } });
}
