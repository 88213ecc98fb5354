// Shared by the authority and API unit tests (imported by relative path, exported from nowhere):
// a real CA in memory over a real SQLite file, a movable clock, a collecting logger, JWK
// provisioners and token/CSR makers, including the malformed ones no honest client would send.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { generateKeyPairSync, randomBytes, randomUUID, sign as nodeSign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, importJWK, type JWK } from 'jose';
import {
  createCsr,
  createSigner,
  csrToPem,
  encodeName,
  encodePem,
  generateKeyPair,
  intermediateDraft,
  issuerInfo,
  leafDraft,
  lintAndSign,
  newSerial,
  parseCsr,
  parseName,
  readCertificate,
  rootDraft,
  signDraft,
  type CertificateInfo,
  type KeyTypeName,
  type OcspHash,
  type PublicKeyInfo,
  type PublicUrls,
  type Signer,
} from '@shortleaf/pki';
import { SqliteStore, sealSecret, unsealSecret } from '@shortleaf/store';
import { createAuthority, type Authority } from './authority.js';
import { AuthorityError, type AuthorityErrorCode } from './errors.js';
import { createIntermediateKey, importIntermediate, loadActiveIssuer, type LoadedIssuer } from './issuer.js';
import type { PolicyDocument } from './policy.js';
import type { Clock, KeySealer, Logger } from './ports.js';

/** A fixed, whole-second "now" every test starts from. */
export const T0 = new Date('2031-03-01T12:00:00.000Z');
export const PASSPHRASE = 'test-pass';
export const AUD = 'https://ca.test:9443/api/v1/sign';
export const URLS: PublicUrls = {
  ocsp: 'http://status.test/ocsp',
  caIssuers: 'http://status.test/intermediate.crt',
  crl: 'http://status.test/crl',
};
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export const at = (base: Date, ms: number): Date => new Date(base.getTime() + ms);

export interface MovableClock extends Clock {
  set(d: Date): void;
  advance(ms: number): void;
}

export function movableClock(start: Date = T0): MovableClock {
  let current = start;
  return {
    now: () => current,
    set: (d) => {
      current = d;
    },
    advance: (ms) => {
      current = at(current, ms);
    },
  };
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  event: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps every line, so tests can look for events and for secrets that must not be there. */
export function memoryLogger(): Logger & { lines: LogLine[]; text(): string } {
  const lines: LogLine[] = [];
  const push =
    (level: LogLine['level']) =>
    (event: string, fields: Record<string, unknown> = {}) => {
      lines.push({ level, event, fields });
    };
  return { lines, info: push('info'), warn: push('warn'), error: push('error'), text: () => JSON.stringify(lines) };
}

export function passphraseSealer(passphrase = PASSPHRASE): KeySealer {
  return {
    seal: (p, c) => sealSecret(p, passphrase, c),
    unseal: (b, c) => unsealSecret(b, passphrase, c),
  };
}

export interface TestRoot {
  certificate: CertificateInfo;
  signer: Signer;
  privateKey: KeyObject;
  pem: string;
}

const fresh = (n: number) => new Uint8Array(randomBytes(n));

/** A self-signed root the way `shortleaf root create` makes one (P-384, backdated 5 minutes). */
export function makeRoot(opts: { now?: Date; commonName?: string; validityMs?: number } = {}): TestRoot {
  const now = opts.now ?? T0;
  const { privateKey } = generateKeyPair('EC-P384');
  const signer = createSigner(privateKey);
  const commonName = opts.commonName ?? 'Test Root CA';
  const subjectDer = encodeName({ commonName, organization: 'Shortleaf' });
  const draft = rootDraft({
    serial: newSerial(fresh).bytes,
    subjectDer,
    commonName,
    publicKey: signer.publicKey,
    notBefore: at(now, -5 * 60_000),
    notAfter: at(now, opts.validityMs ?? 3650 * DAY),
  });
  const der = lintAndSign(draft, signer, { issuer: null });
  return { certificate: readCertificate(der), signer, privateKey, pem: encodePem('CERTIFICATE', der) };
}

/**
 * The root signs an intermediate for `publicKey`. With `lint: false` the draft is signed as is,
 * which is how tests forge certificates our own lints would refuse (a CA reusing the root key).
 */
export function signIntermediate(
  root: TestRoot,
  publicKey: PublicKeyInfo,
  opts: { now?: Date; validityMs?: number; permitDns?: string[]; commonName?: string; lint?: boolean } = {},
): Uint8Array {
  const now = opts.now ?? T0;
  const commonName = opts.commonName ?? 'Test Intermediate CA';
  const issuer = issuerInfo(root.certificate, root.signer);
  const draft = intermediateDraft({
    serial: newSerial(fresh).bytes,
    subjectDer: encodeName({ commonName, organization: 'Shortleaf' }),
    commonName,
    publicKey,
    notBefore: at(now, -5 * 60_000),
    notAfter: new Date(Math.min(at(now, opts.validityMs ?? 365 * DAY).getTime(), root.certificate.notAfter.getTime())),
    issuer,
    permitDns: opts.permitDns ?? [],
    permitUri: [],
  });
  return opts.lint === false ? signDraft(draft, root.signer) : lintAndSign(draft, root.signer, { issuer });
}

/** A leaf signed directly by `root` (never recorded anywhere): a certificate this CA did not issue. */
export function foreignLeaf(
  root: { certificate: CertificateInfo; signer: Signer },
  opts: { names: string[]; publicKey: PublicKeyInfo; serialHex?: string; now?: Date },
): Uint8Array {
  const now = opts.now ?? T0;
  const names = opts.names.map((n) => parseName(n));
  const serial = opts.serialHex === undefined ? newSerial(fresh).bytes : serialBytes(opts.serialHex);
  const issuer = issuerInfo(root.certificate, root.signer);
  const draft = leafDraft({
    serial,
    commonName: names[0]?.value ?? null,
    names,
    publicKey: opts.publicKey,
    notBefore: at(now, -60_000),
    notAfter: at(now, DAY),
    issuer,
    urls: URLS,
  });
  return signDraft(draft, root.signer);
}

/** DER INTEGER content octets for a canonical hex serial. */
export function serialBytes(hex: string): Uint8Array {
  const raw = Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
  return new Uint8Array(raw[0]! & 0x80 ? Buffer.concat([Buffer.of(0), raw]) : raw);
}

export interface TestCa {
  dir: string;
  store: SqliteStore;
  clock: MovableClock;
  logger: ReturnType<typeof memoryLogger>;
  sealer: KeySealer;
  root: TestRoot;
  intermediateDer: Uint8Array;
  issuer: LoadedIssuer;
  authority: Authority;
  /** Replaces the authority's random source; null restores crypto.randomBytes. */
  setRandom(fn: ((n: number) => Uint8Array) | null): void;
  counts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/**
 * A CA as `shortleaf init` builds it, minus the files: an offline root, an intermediate key made
 * and sealed inside the database, signed by the root and imported, then loaded and wired into an
 * authority. Sealing costs ~100 ms of scrypt, so make one per test file.
 */
export async function createTestCa(
  opts: { now?: Date; intermediateValidityMs?: number; permitDns?: string[] } = {},
): Promise<TestCa> {
  const now = opts.now ?? T0;
  const dir = mkdtempSync(join(tmpdir(), 'auth-'));
  const store = await SqliteStore.open(join(dir, 'db.sqlite'));
  const clock = movableClock(now);
  const logger = memoryLogger();
  const sealer = passphraseSealer();
  const root = makeRoot({ now });
  const csr = await createIntermediateKey(store, sealer, clock, {
    id: 'int-1',
    name: 'primary',
    commonName: 'Test Intermediate CA',
  });
  const intermediateDer = signIntermediate(root, parseCsr(csr).publicKey, {
    now,
    ...(opts.intermediateValidityMs === undefined ? {} : { validityMs: opts.intermediateValidityMs }),
    ...(opts.permitDns === undefined ? {} : { permitDns: opts.permitDns }),
  });
  await importIntermediate(store, clock, {
    name: 'primary',
    certificatePem: encodePem('CERTIFICATE', intermediateDer),
    rootPem: root.pem,
  });
  const issuer = await loadActiveIssuer(store, sealer);
  let override: ((n: number) => Uint8Array) | null = null;
  const authority = createAuthority({
    store,
    issuer,
    clock,
    random: (n) => (override ?? fresh)(n),
    urls: URLS,
    logger,
  });
  return {
    dir,
    store,
    clock,
    logger,
    sealer,
    root,
    intermediateDer,
    issuer,
    authority,
    setRandom: (fn) => {
      override = fn;
    },
    counts: () => store.counts(),
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestProvisioner {
  name: string;
  alg: 'ES256' | 'EdDSA';
  privateJwk: JWK;
  publicJwk: JWK;
}

/** Generates a JWK provisioner and stores its public half and policy, as `shortleaf provisioner add` does. */
export async function addProvisioner(
  store: SqliteStore,
  name: string,
  policy: PolicyDocument | Record<string, unknown> = {},
  kty: 'EC' | 'OKP' = 'EC',
): Promise<TestProvisioner> {
  const { privateKey, publicKey } = generateKeyPair(kty === 'OKP' ? 'Ed25519' : 'EC-P256');
  const publicJwk = publicKey.export({ format: 'jwk' }) as JWK;
  await store.addProvisioner({
    name,
    type: 'jwk',
    publicJwk: JSON.stringify(publicJwk),
    policy: JSON.stringify(policy),
    createdAt: T0,
  });
  return {
    name,
    alg: kty === 'OKP' ? 'EdDSA' : 'ES256',
    privateJwk: privateKey.export({ format: 'jwk' }) as JWK,
    publicJwk,
  };
}

export interface MintOptions {
  now?: Date;
  subject?: string;
  /** Default: [subject]. Any value, so tests can send malformed ones. */
  sans?: unknown;
  lifetimeSeconds?: number;
  audience?: string;
  /** Overrides or adds claims (iat, nbf, exp, jti, iss …); `undefined` removes one. */
  claims?: Record<string, unknown>;
  /** Sign with this key instead of the provisioner's. */
  signingJwk?: JWK;
  alg?: string;
}

/** Mints a one-time token with the claims `shortleaf token` (mintToken) writes. */
export async function mint(p: TestProvisioner, o: MintOptions = {}): Promise<string> {
  const now = Math.floor((o.now ?? T0).getTime() / 1000);
  const subject = o.subject ?? 'api.internal';
  const payload: Record<string, unknown> = {
    sans: o.sans === undefined ? [subject] : o.sans,
    iss: p.name,
    aud: o.audience ?? AUD,
    sub: subject,
    iat: now,
    nbf: now,
    exp: now + (o.lifetimeSeconds ?? 300),
    jti: randomUUID(),
    ...o.claims,
  };
  for (const k of Object.keys(payload)) if (payload[k] === undefined) delete payload[k];
  const alg = o.alg ?? p.alg;
  return new SignJWT(payload)
    .setProtectedHeader({ alg, typ: 'JWT' })
    .sign(await importJWK(o.signingJwk ?? p.privateJwk, alg));
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A JWT with `alg: none` and an empty signature, which jose refuses to make. */
export function unsecuredToken(p: TestProvisioner, now: Date = T0, subject = 'api.internal'): string {
  const s = Math.floor(now.getTime() / 1000);
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ iss: p.name, aud: AUD, sub: subject, sans: [subject], iat: s, nbf: s, exp: s + 300, jti: randomUUID() })}.`;
}

export interface TestCsr {
  pem: string;
  der: Uint8Array;
  privateKey: KeyObject;
  publicKey: PublicKeyInfo;
}

/** A well-formed CSR for `names` (SAN request) with a fresh key of the given type. */
export function makeCsr(
  names: string[] = [],
  opts: { keyType?: KeyTypeName; commonName?: string | null } = {},
): TestCsr {
  const { privateKey } = generateKeyPair(opts.keyType ?? 'EC-P256');
  const der = createCsr(
    privateKey,
    { commonName: opts.commonName === undefined ? (names[0] ?? null) : opts.commonName },
    names.map((n) => parseName(n)),
  );
  return { pem: csrToPem(der), der, privateKey, publicKey: parseCsr(der).publicKey };
}

/** The same CSR with one bit of its signature flipped: well-formed, but it proves nothing. */
export function corruptCsrSignature(der: Uint8Array): string {
  const bad = Uint8Array.from(der);
  bad[bad.length - 1]! ^= 0x01;
  return csrToPem(bad);
}

// Minimal DER writer for CSRs pki refuses to make (weak RSA keys).
function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return new Uint8Array(Buffer.concat([Buffer.of(tag, ...len), body]));
}

/** A correctly self-signed PKCS#10 CSR for an RSA key of `bits` (e.g. 1024, which we refuse). */
export function rsaCsr(bits: number): string {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const spki = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));
  const info = tlv(0x30, tlv(0x02, Uint8Array.of(0)), encodeName({ commonName: 'weak.internal' }), spki, tlv(0xa0));
  const sha256WithRsa = Uint8Array.of(0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b);
  const signature = new Uint8Array(nodeSign('sha256', info, privateKey));
  const der = tlv(
    0x30,
    info,
    tlv(0x30, sha256WithRsa, Uint8Array.of(0x05, 0x00)),
    tlv(0x03, Uint8Array.of(0), signature),
  );
  return csrToPem(der);
}

/** Asserts a rejection is an AuthorityError (or another error class with `code`) with this code and message fragment. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: AuthorityErrorCode | string,
  fragment: string,
  errorClass: new (...args: never[]) => Error = AuthorityError,
): Promise<Error> {
  let caught: unknown;
  await assert.rejects(promise, (err) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof errorClass, `expected ${errorClass.name}, got ${String(caught)}`);
  assert.equal((caught as { code?: unknown }).code, code, `wrong code; message: ${(caught as Error).message}`);
  assert.ok(
    (caught as Error).message.includes(fragment),
    `"${(caught as Error).message}" should mention "${fragment}"`,
  );
  return caught as Error;
}

/** Runs `fn` and asserts no table of the store changed size. */
export async function unchanged<T>(
  ca: { counts(): Promise<Record<string, number>> },
  fn: () => Promise<T>,
): Promise<T> {
  const before = await ca.counts();
  const result = await fn();
  assert.deepEqual(await ca.counts(), before, 'the store must be left exactly as it was');
  return result;
}

// A minimal DER OCSPRequest for one CertID (RFC 6960 §4.1.1), built by hand so the responder is
// tested on exact bytes; OpenSSL-made requests are covered by the end-to-end tests.
const HASH_OID: Record<OcspHash, string> = {
  sha1: '06052b0e03021a',
  sha256: '0609608648016503040201',
  sha384: '0609608648016503040202',
  sha512: '0609608648016503040203',
};
function derTlv(tag: number, body: Buffer): Buffer {
  const len =
    body.length < 0x80
      ? Buffer.of(body.length)
      : body.length < 0x100
        ? Buffer.of(0x81, body.length)
        : Buffer.of(0x82, body.length >> 8, body.length & 0xff);
  return Buffer.concat([Buffer.of(tag), len, body]);
}
export function ocspRequest(
  hashes: { nameHash: Uint8Array; keyHash: Uint8Array },
  serialHex: string,
  hash: OcspHash = 'sha1',
  nonce?: Buffer,
): Uint8Array {
  const serial = Buffer.from(serialHex.length % 2 ? `0${serialHex}` : serialHex, 'hex');
  const serialInt = serial[0]! & 0x80 ? Buffer.concat([Buffer.of(0), serial]) : serial;
  const certId = derTlv(
    0x30,
    Buffer.concat([
      derTlv(0x30, Buffer.concat([Buffer.from(HASH_OID[hash], 'hex'), Buffer.of(5, 0)])),
      derTlv(4, Buffer.from(hashes.nameHash)),
      derTlv(4, Buffer.from(hashes.keyHash)),
      derTlv(2, serialInt),
    ]),
  );
  const requestList = derTlv(0x30, derTlv(0x30, certId));
  const extensions =
    nonce === undefined
      ? Buffer.alloc(0)
      : derTlv(
          0xa2,
          derTlv(
            0x30,
            derTlv(0x30, Buffer.concat([Buffer.from('06092b0601050507300102', 'hex'), derTlv(4, derTlv(4, nonce))])),
          ),
        );
  return derTlv(0x30, derTlv(0x30, Buffer.concat([requestList, extensions])));
}
