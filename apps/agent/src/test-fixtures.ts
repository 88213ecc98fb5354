// Certificates for the agent's unit tests, made with pki's public API: a root, intermediates
// under it, and leaves, all with real keys and signatures.
import { randomBytes } from 'node:crypto';
import {
  createSigner,
  encodeName,
  encodePem,
  generateKeyPair,
  intermediateDraft,
  issuerInfo,
  leafDraft,
  newSerial,
  parseCertificate,
  parseName,
  publicKeyOf,
  rootDraft,
  serialToHex,
  signDraft,
  type IssuerInfo,
  type KeyObject,
  type Signer,
} from '@shortleaf/pki';

const HOUR = 3_600_000;
export const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const URLS = {
  ocsp: 'http://status.test/ocsp',
  caIssuers: 'http://status.test/intermediate.crt',
  crl: 'http://status.test/crl',
};

export interface Ca {
  der: Uint8Array;
  pem: string;
  signer: Signer;
  info: IssuerInfo;
}

/** A root (no parent) or an intermediate under `parent`, valid from a day before `now` for a year. */
export function makeCa(commonName: string, parent?: Ca, now = new Date()): Ca {
  const signer = createSigner(generateKeyPair('EC-P256').privateKey);
  const base = {
    serial: newSerial(random).bytes,
    subjectDer: encodeName({ commonName, organization: 'Shortleaf Test' }),
    commonName,
    publicKey: signer.publicKey,
    notBefore: new Date(now.getTime() - 24 * HOUR),
    notAfter: new Date(now.getTime() + 365 * 24 * HOUR),
  };
  const draft =
    parent === undefined
      ? rootDraft(base)
      : intermediateDraft({ ...base, issuer: parent.info, permitDns: [], permitUri: [] });
  const der = signDraft(draft, parent?.signer ?? signer);
  return { der, pem: encodePem('CERTIFICATE', der), signer, info: issuerInfo(parseCertificate(der), signer) };
}

/** A leaf for `name` under `ca`, for `key` (a fresh one by default), valid around `now`. */
export function makeLeaf(
  ca: Ca,
  name: string,
  opts: { key?: KeyObject; now?: Date; lifetimeMs?: number } = {},
): { pem: string; serial: string } {
  const now = opts.now ?? new Date();
  const draft = leafDraft({
    serial: newSerial(random).bytes,
    commonName: name,
    names: [parseName(name)],
    publicKey: publicKeyOf(opts.key ?? generateKeyPair('EC-P256').privateKey),
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + (opts.lifetimeMs ?? HOUR)),
    issuer: ca.info,
    urls: URLS,
  });
  return { pem: encodePem('CERTIFICATE', signDraft(draft, ca.signer)), serial: serialToHex(draft.serial) };
}
