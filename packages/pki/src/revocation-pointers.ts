import { Buffer } from 'node:buffer';
import { readChildren, readOid, readTlv } from './der.js';
import { x509 } from './x509.js';

/** The URLs a certificate names for its status and its issuer (RFC 5280 §4.2.2.1, §4.2.1.13). */
export interface RevocationPointers {
  ocsp: string[];
  caIssuers: string[];
  crl: string[];
}

const AIA = '1.3.6.1.5.5.7.1.1';
const CRL_DISTRIBUTION_POINTS = '2.5.29.31';
const AD_OCSP = '1.3.6.1.5.5.7.48.1';
const AD_CA_ISSUERS = '1.3.6.1.5.5.7.48.2';
const URI_TAG = 0x86;

const text = (buf: Uint8Array, t: { contentStart: number; end: number }) =>
  Buffer.from(buf.subarray(t.contentStart, t.end)).toString('ascii');

/**
 * Reads the URI forms of a certificate's AIA (OCSP, caIssuers) and CRL distribution points
 * (fullName only); other name forms are left out. Empty lists when the extensions are absent.
 */
export function readRevocationPointers(certificateDer: Uint8Array): RevocationPointers {
  const cert = new x509.X509Certificate(certificateDer);
  const out: RevocationPointers = { ocsp: [], caIssuers: [], crl: [] };
  const aia = cert.getExtension(AIA);
  if (aia !== null) {
    const v = new Uint8Array(aia.value);
    for (const description of readChildren(v, readTlv(v, 0))) {
      const [method, location] = readChildren(v, description);
      if (method === undefined || location?.tag !== URI_TAG) continue;
      const oid = readOid(v, method);
      if (oid === AD_OCSP) out.ocsp.push(text(v, location));
      if (oid === AD_CA_ISSUERS) out.caIssuers.push(text(v, location));
    }
  }
  const dps = cert.getExtension(CRL_DISTRIBUTION_POINTS);
  if (dps !== null) {
    const v = new Uint8Array(dps.value);
    for (const dp of readChildren(v, readTlv(v, 0))) {
      const name = readChildren(v, dp).find((t) => t.tag === 0xa0);
      const fullName = name === undefined ? undefined : readChildren(v, name).find((t) => t.tag === 0xa0);
      if (fullName === undefined) continue;
      for (const general of readChildren(v, fullName)) if (general.tag === URI_TAG) out.crl.push(text(v, general));
    }
  }
  return out;
}
