import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import {
  createSigner,
  encodeName,
  encodePem,
  exportEncryptedPrivateKey,
  generateKeyPair,
  importPrivateKeyPem,
  intermediateDraft,
  issuerInfo,
  lintAndSign,
  MAX_OCSP_SIGNER_VALIDITY_MS,
  newSerial,
  ocspSignerDraft,
  parseCsr,
  buildCrl,
  normalizeSerial,
  reasonCode,
  reasonName,
  type CrlEntry,
  readCertificate,
  rootDraft,
  type CertificateInfo,
  type IntermediateUrls,
  type KeyTypeName,
  type Signer,
} from '@shortleaf/pki';
import { parseDuration, rootFingerprint } from '@shortleaf/authority';
import { UsageError } from './cli.js';
import { assertAbsent, writeFileAtomic, writeSecretFile } from './files.js';
import { rootLayout } from './layout.js';
import { assertPrivateFile } from './passphrase.js';

const random = (n: number) => new Uint8Array(randomBytes(n));
const wholeSecond = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);

/** Root and intermediate certificates are backdated this much, for clock skew across machines. */
const CA_BACKDATE_MS = 5 * 60_000;

/**
 * Creates an offline root: key (P-384 by default) encrypted as PKCS#8 under the passphrase, mode
 * 0600, and a self-signed certificate. Refuses to overwrite an existing root.
 */
export function createRoot(opts: {
  dir: string;
  passphrase: string;
  commonName: string;
  keyType?: KeyTypeName;
  validity?: string;
  now?: Date;
}): CertificateInfo {
  const files = rootLayout(opts.dir);
  assertAbsent(files.key);
  assertAbsent(files.certificate);
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPair(opts.keyType ?? 'EC-P384');
  const signer = createSigner(privateKey);
  const now = wholeSecond(opts.now ?? new Date());
  const subjectDer = encodeName({ commonName: opts.commonName, organization: 'Shortleaf' });
  const draft = rootDraft({
    serial: newSerial(random).bytes,
    subjectDer,
    commonName: opts.commonName,
    publicKey: signer.publicKey,
    notBefore: new Date(now.getTime() - CA_BACKDATE_MS),
    notAfter: new Date(now.getTime() + parseDuration(opts.validity ?? '3650d')),
  });
  const der = lintAndSign(draft, signer, { issuer: null });
  writeSecretFile(files.key, exportEncryptedPrivateKey(privateKey, opts.passphrase));
  writeFileAtomic(files.certificate, encodePem('CERTIFICATE', der));
  return readCertificate(der);
}

/** Validity of a certificate the root signs: backdated for clock skew, never outside the root's. */
function underRoot(root: CertificateInfo, now: Date, validity: string): { notBefore: Date; notAfter: Date } {
  return {
    notBefore: new Date(Math.max(now.getTime() - CA_BACKDATE_MS, root.notBefore.getTime())),
    notAfter: new Date(Math.min(now.getTime() + parseDuration(validity), root.notAfter.getTime())),
  };
}

/** Opens an offline root: its certificate and a signer from the decrypted key. */
export function openRoot(dir: string, passphrase: string): { certificate: CertificateInfo; signer: Signer } {
  const files = rootLayout(dir);
  const certificate = readCertificate(readFileSync(files.certificate, 'utf8'));
  assertPrivateFile(files.key);
  const signer = createSigner(importPrivateKeyPem(readFileSync(files.key, 'utf8'), passphrase));
  return { certificate, signer };
}

/**
 * Where the status listener at `statusUrl` publishes what a verifier needs to check an
 * intermediate: this root's certificate (DER) and CRL, under the root's SHA-256 fingerprint so the
 * URLs stay right through a root rollover (`/root.crt` and `/root.crl` follow the active
 * intermediate's root), and the OCSP responder the root delegates at this ceremony.
 */
export function intermediateUrls(statusUrl: string, root: CertificateInfo, withOcsp: boolean): IntermediateUrls {
  const base = statusUrl.replace(/\/+$/, '');
  // RFC 5280 §4.2.2.1: revocation data is fetched without TLS, or it would need revocation data first.
  if (!/^http:\/\/[^/]+$/.test(base))
    throw new UsageError(
      `--status-url must be the status listener's plain http:// base URL, such as http://ca.internal:9080 (no path), not ${JSON.stringify(statusUrl)}`,
    );
  const fingerprint = rootFingerprint(root.der);
  return {
    ...(withOcsp ? { ocsp: `${base}/ocsp` } : {}),
    caIssuers: `${base}/root/${fingerprint}.crt`,
    crl: `${base}/root/${fingerprint}.crl`,
  };
}

/**
 * Signs an intermediate CSR with the offline root: CA:TRUE, pathLen 0, keyCertSign+cRLSign,
 * optional permitted name constraints, validity bounded by the root's, and with `urls` the AIA
 * and CRL distribution point that lead to the intermediate's own status.
 */
export function signIntermediate(opts: {
  root: { certificate: CertificateInfo; signer: Signer };
  csrPem: string;
  permitDns?: readonly string[];
  permitUri?: readonly string[];
  urls?: IntermediateUrls;
  validity?: string;
  now?: Date;
}): Uint8Array {
  const fields = rootSignedFields(opts, 'Shortleaf Intermediate CA');
  const draft = intermediateDraft({
    ...fields,
    ...(opts.urls === undefined ? {} : { urls: opts.urls }),
    // RFC 5280 §4.2.1.10: a URI constraint names a host, so spiffe://example.org becomes example.org.
    permitDns: opts.permitDns ?? [],
    permitUri: (opts.permitUri ?? []).map((u) => (u.includes('://') ? new URL(u).hostname : u)),
  });
  return lintAndSign(draft, opts.root.signer, { issuer: fields.issuer });
}

/** What every certificate the root signs from a CSR shares: serial, subject, key, validity under the root, issuer. */
function rootSignedFields(
  opts: { root: { certificate: CertificateInfo; signer: Signer }; csrPem: string; validity?: string; now?: Date },
  defaultCommonName: string,
) {
  const csr = parseCsr(opts.csrPem);
  const commonName = csr.commonName ?? defaultCommonName;
  return {
    serial: newSerial(random).bytes,
    subjectDer: encodeName({ commonName, organization: 'Shortleaf' }),
    commonName,
    publicKey: csr.publicKey,
    ...underRoot(opts.root.certificate, wholeSecond(opts.now ?? new Date()), opts.validity ?? '1825d'),
    issuer: issuerInfo(opts.root.certificate, opts.root.signer),
  };
}

/**
 * Default lifetime of the root-delegated OCSP signer: the root CRL's, so one ceremony every
 * ~80 days renews both. Its key is online and, with ocsp-nocheck, it cannot be revoked: its
 * lifetime is how long a leaked key can vouch for the intermediate.
 */
export const ROOT_OCSP_SIGNER_VALIDITY = '90d';

/** Checks an OCSP signer lifetime from the command line before the root key is opened. */
export function checkOcspSignerValidity(validity: string, flag: string): string {
  let ms: number;
  try {
    ms = parseDuration(validity);
  } catch (err) {
    throw new UsageError(`${flag}: ${(err as Error).message}`);
  }
  if (ms > MAX_OCSP_SIGNER_VALIDITY_MS)
    throw new UsageError(
      `${flag} is at most 366d: the responder cannot be revoked (ocsp-nocheck) and its key is online; re-sign it at each ceremony instead`,
    );
  return validity;
}

/**
 * Signs, with the offline root, the OCSP responder certificate the server uses to answer for the
 * intermediate's own status (RFC 6960 §4.2.2.2: EKU OCSPSigning, ocsp-nocheck). It cannot be
 * revoked, so it is short-lived (ROOT_OCSP_SIGNER_VALIDITY) and re-signed at each ceremony
 * (`intermediate ocsp-csr`, `root sign-ocsp`, `intermediate ocsp-import`).
 */
export function signRootOcspSigner(opts: {
  root: { certificate: CertificateInfo; signer: Signer };
  csrPem: string;
  validity?: string;
  now?: Date;
}): Uint8Array {
  const fields = rootSignedFields(
    { ...opts, validity: opts.validity ?? ROOT_OCSP_SIGNER_VALIDITY },
    'Shortleaf Root OCSP Responder',
  );
  return lintAndSign(ocspSignerDraft(fields), opts.root.signer, { issuer: fields.issuer });
}

interface RootCrlState {
  number: string;
  revoked: Array<{ serial: string; revokedAt: string; reason: string }>;
}

/**
 * Issues the root's next CRL from the state kept beside the root key (root-crl.json): every
 * revocation made so far, plus an optional new one, under a number one higher than the last.
 * The root CRL carries no Issuing Distribution Point: it covers every certificate the root
 * issued, whether or not the certificate names a distribution point (intermediates signed before
 * `--status-url` name none, and OpenSSL would judge a CRL with one out of scope for them).
 */
export function signRootCrl(opts: {
  root: { certificate: CertificateInfo; signer: Signer };
  dir: string;
  revoke?: { serial: string; reason: string };
  validity?: string;
  now?: Date;
}): { der: Uint8Array; number: bigint; entries: number } {
  const stateFile = rootLayout(opts.dir).crlState;
  const state: RootCrlState = existsSync(stateFile)
    ? (JSON.parse(readFileSync(stateFile, 'utf8')) as RootCrlState)
    : { number: '0', revoked: [] };
  const now = wholeSecond(opts.now ?? new Date());
  if (opts.revoke !== undefined) {
    const serial = normalizeSerial(opts.revoke.serial);
    const reason = reasonName(reasonCode(opts.revoke.reason));
    if (!state.revoked.some((r) => r.serial === serial))
      state.revoked.push({ serial, revokedAt: now.toISOString(), reason });
  }
  const number = BigInt(state.number) + 1n;
  const entries: CrlEntry[] = state.revoked.map((r) => ({
    serial: r.serial,
    revokedAt: new Date(r.revokedAt),
    reason: reasonName(reasonCode(r.reason)),
  }));
  const der = buildCrl({
    issuer: {
      subjectDer: opts.root.certificate.subjectDer,
      subjectKeyIdentifier: opts.root.certificate.subjectKeyIdentifier!,
      signer: opts.root.signer,
    },
    number,
    thisUpdate: now,
    nextUpdate: new Date(
      Math.min(now.getTime() + parseDuration(opts.validity ?? '90d'), opts.root.certificate.notAfter.getTime()),
    ),
    distributionPoint: null,
    entries,
  });
  writeFileAtomic(stateFile, `${JSON.stringify({ number: number.toString(), revoked: state.revoked }, null, 2)}\n`);
  return { der, number, entries: entries.length };
}
