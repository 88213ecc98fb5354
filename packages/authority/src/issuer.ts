import { Buffer } from 'node:buffer';
import {
  createCsr,
  createSigner,
  exportPrivateKey,
  generateKeyPair,
  importPrivateKey,
  isIssuedBy,
  issuerInfo,
  parseCertificate,
  parseCsr,
  readCertificate,
  readNameConstraintSet,
  widerConstraints,
  type CertificateInfo,
  type IssuerInfo,
  type KeyTypeName,
  type Signer,
} from '@shortleaf/pki';
import { INTERNAL_PROVISIONER, OCSP_PROVISIONER } from './authority.js';
import { AuthorityError } from './errors.js';
import type { AuthorityStore, Clock, IssuerRow, KeySealer } from './ports.js';

/**
 * An intermediate in service, unsealed and checked: the active one signs leaves; each one in
 * service (retired ones too) signs its own CRL and its delegated OCSP responder's certificate.
 */
export interface LoadedIssuer {
  id: string;
  name: string;
  certificate: CertificateInfo;
  roots: CertificateInfo[];
  signer: Signer;
  info: IssuerInfo;
}

const sealContext = (id: string) => `issuer:${id}`;

/**
 * Checks that a CA certificate may be used as our signing intermediate: a CA, not self-signed,
 * chaining to one of the roots, with a key that is no root's key. This is how the server refuses
 * to ever hold a root private key, even if an operator imports one by mistake.
 */
export function assertUsableIntermediate(cert: CertificateInfo, roots: readonly CertificateInfo[]): CertificateInfo {
  if (cert.selfSigned || roots.some((r) => Buffer.from(r.publicKey.spki).equals(cert.publicKey.spki))) {
    throw new AuthorityError(
      'rootKeyRefused',
      'this is a root certificate or uses a root key: the server never holds a root private key; sign an intermediate offline instead',
    );
  }
  if (!cert.isCa)
    throw new AuthorityError(
      'issuerMismatch',
      'the certificate is not a CA certificate (BasicConstraints cA is not set)',
    );
  const root = roots.find((r) => isIssuedBy(cert, r));
  if (root === undefined)
    throw new AuthorityError('issuerMismatch', 'the intermediate certificate does not chain to the given root');
  return root;
}

/** Unseals the active intermediate's key and checks it against its certificate and roots. */
export async function loadActiveIssuer(store: AuthorityStore, sealer: KeySealer): Promise<LoadedIssuer> {
  const row = await store.getActiveIssuer();
  if (row === null || row.certDer === null) {
    throw new AuthorityError(
      'issuerUnavailable',
      'no active intermediate: run `shortleaf init` (development) or `shortleaf intermediate csr` and `intermediate import`',
    );
  }
  return loadIssuer(store, sealer, row);
}

/** Unseals one certified intermediate's key and checks it against its certificate and the roots. */
export async function loadIssuer(store: AuthorityStore, sealer: KeySealer, row: IssuerRow): Promise<LoadedIssuer> {
  if (row.certDer === null)
    throw new AuthorityError(
      'issuerUnavailable',
      `intermediate ${row.name} has no certificate yet: sign its CSR offline and run \`shortleaf intermediate import\``,
    );
  const roots = (await store.listRoots()).map((der) => parseCertificate(der));
  const certificate = parseCertificate(row.certDer);
  assertUsableIntermediate(certificate, roots);
  const key = importPrivateKey(await sealer.unseal(row.sealedKey, sealContext(row.id)));
  const signer = createSigner(key);
  if (!Buffer.from(signer.publicKey.spki).equals(certificate.publicKey.spki)) {
    throw new AuthorityError(
      'issuerMismatch',
      `the sealed key of intermediate ${row.name} does not match its certificate`,
    );
  }
  return { id: row.id, name: row.name, certificate, roots, signer, info: issuerInfo(certificate, signer) };
}

/**
 * Where an intermediate is in its life. `pending`: its CSR awaits the root's signature.
 * `staged`: certified, never active (proxies can be taught to trust it before it signs).
 * `active`: signs new certificates. `retired`: was active and still answers OCSP and publishes
 * its CRL, because certificates it issued have not all expired. `ended`: out of service, its own
 * certificate or every certificate it issued having expired.
 */
export type IssuerState = 'pending' | 'staged' | 'active' | 'retired' | 'ended';

export interface IssuerStatus {
  row: IssuerRow;
  state: IssuerState;
  /** Its certificate, once imported. */
  certificate: CertificateInfo | null;
  /** When the last certificate it issued expires (the CA's own OCSP responders left out). */
  lastExpiry: Date | null;
}

/**
 * The provisioners whose certificates do not keep a retired intermediate in service: its own OCSP
 * responders, and the CA's HTTPS certificates, which `serve` re-issues from the new intermediate
 * as soon as it is activated.
 */
const SELF_SERVING = [OCSP_PROVISIONER, INTERNAL_PROVISIONER];

/** Every intermediate with its state at `now`, oldest first. */
export async function issuerStatuses(store: AuthorityStore, now: Date): Promise<IssuerStatus[]> {
  const statuses: IssuerStatus[] = [];
  for (const row of await store.listIssuers()) {
    const certificate = row.certDer === null ? null : parseCertificate(row.certDer);
    const lastExpiry = await store.lastCertificateExpiry(row.id, SELF_SERVING);
    let state: IssuerState;
    if (certificate === null) state = 'pending';
    else if (row.active) state = 'active';
    else if (now.getTime() >= certificate.notAfter.getTime()) state = 'ended';
    else if (row.activatedAt === null) state = 'staged';
    else state = lastExpiry !== null && lastExpiry.getTime() > now.getTime() ? 'retired' : 'ended';
    statuses.push({ row, state, certificate, lastExpiry });
  }
  return statuses;
}

/** States in which an intermediate publishes a CRL and answers OCSP. */
export const IN_SERVICE: ReadonlySet<IssuerState> = new Set(['staged', 'active', 'retired']);

/**
 * Makes a certified intermediate the one that signs new certificates. A running server notices
 * and switches without a restart; the one it replaces retires, still answering for what it issued.
 * Refuses one that is pending, expired, or no longer chains to a trusted root.
 */
export async function activateIntermediate(
  store: AuthorityStore,
  clock: Clock,
  name: string,
): Promise<{ previous: string | null; certificate: CertificateInfo }> {
  const row = await store.getIssuerByName(name);
  if (row === null) throw new AuthorityError('issuerMismatch', `no intermediate named ${name}`);
  if (row.certDer === null)
    throw new AuthorityError(
      'issuerUnavailable',
      `intermediate ${name} has no certificate yet: sign its CSR offline and run \`shortleaf intermediate import\``,
    );
  const certificate = parseCertificate(row.certDer);
  const now = clock.now();
  if (now.getTime() >= certificate.notAfter.getTime())
    throw new AuthorityError(
      'issuerUnavailable',
      `intermediate ${name} expired at ${certificate.notAfter.toISOString()}`,
    );
  if (now.getTime() < certificate.notBefore.getTime())
    throw new AuthorityError(
      'issuerUnavailable',
      `intermediate ${name} is not valid before ${certificate.notBefore.toISOString()}`,
    );
  assertUsableIntermediate(
    certificate,
    (await store.listRoots()).map((der) => parseCertificate(der)),
  );
  const previous = await store.getActiveIssuer();
  await store.activateIssuer(row.id, now);
  return { previous: previous === null || previous.id === row.id ? null : previous.name, certificate };
}

/**
 * Generates a new intermediate key inside the database, sealed, and returns its CSR (DER). The
 * key never exists anywhere else: the offline root signs the CSR and `importIntermediate` brings
 * the certificate back.
 */
export async function createIntermediateKey(
  store: AuthorityStore,
  sealer: KeySealer,
  clock: Clock,
  opts: { id: string; name: string; commonName: string; keyType?: KeyTypeName },
): Promise<Uint8Array> {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(opts.name))
    throw new AuthorityError('badPolicy', 'an intermediate name is lower-case letters, digits and dashes');
  if ((await store.getIssuerByName(opts.name)) !== null) {
    throw new AuthorityError('badPolicy', `an intermediate named ${opts.name} already exists`);
  }
  const keyType = opts.keyType ?? 'EC-P256';
  const { privateKey } = generateKeyPair(keyType);
  const csr = createCsr(privateKey, { commonName: opts.commonName, organization: 'Shortleaf' }, []);
  const sealedKey = await sealer.seal(exportPrivateKey(privateKey), sealContext(opts.id));
  await store.createIssuer({
    id: opts.id,
    name: opts.name,
    sealedKey,
    keyAlgorithm: keyType,
    csrDer: csr,
    createdAt: clock.now(),
  });
  return csr;
}

/**
 * Accepts a signed intermediate certificate: it must chain to the given root and carry the
 * public key sealed under `name`. Activates it when no intermediate is active yet. One that would
 * admit names the active intermediate does not (a rotation that forgot `--permit-*` at the
 * ceremony) is refused unless `allowWiderConstraints` says the operator means it.
 */
export async function importIntermediate(
  store: AuthorityStore,
  clock: Clock,
  opts: { name: string; certificatePem: string; rootPem: string; allowWiderConstraints?: boolean },
): Promise<{
  activated: boolean;
  certificate: CertificateInfo;
  widerThan: { name: string; reasons: string[] } | null;
}> {
  const row = await store.getIssuerByName(opts.name);
  if (row === null)
    throw new AuthorityError(
      'issuerMismatch',
      `no intermediate key named ${opts.name}: run \`shortleaf intermediate csr\` first`,
    );
  const root = readCertificate(opts.rootPem);
  if (!root.selfSigned || !root.isCa)
    throw new AuthorityError('issuerMismatch', 'the --root file is not a self-signed CA certificate');
  const cert = readCertificate(opts.certificatePem);
  assertUsableIntermediate(cert, [root]);
  const csrKey = parseCsrKey(row.csrDer);
  if (!Buffer.from(csrKey).equals(cert.publicKey.spki)) {
    throw new AuthorityError(
      'issuerMismatch',
      `the certificate's key is not the key sealed for intermediate ${opts.name}`,
    );
  }
  const active = await store.getActiveIssuer();
  const widerThan =
    active === null || active.id === row.id || active.certDer === null
      ? null
      : {
          name: active.name,
          reasons: widerConstraints(readNameConstraintSet(cert.der), readNameConstraintSet(active.certDer)),
        };
  if (widerThan !== null && widerThan.reasons.length > 0 && opts.allowWiderConstraints !== true) {
    throw new AuthorityError(
      'widerNameConstraints',
      `intermediate ${opts.name} is less constrained than the active ${widerThan.name}: ${widerThan.reasons.join('; ')}. Sign it again with the same --permit-* flags, or import it with --allow-wider-constraints if the wider names are meant`,
    );
  }
  const now = clock.now();
  await store.addRoot(root.der, now);
  await store.setIssuerCertificate(row.id, cert.der);
  if (active === null) await store.activateIssuer(row.id, now);
  return {
    activated: active === null,
    certificate: cert,
    widerThan: widerThan !== null && widerThan.reasons.length > 0 ? widerThan : null,
  };
}

// The CSR was made by createIntermediateKey; it is re-read only for the key it carries.
const parseCsrKey = (csrDer: Uint8Array): Uint8Array => parseCsr(csrDer).publicKey.spki;
