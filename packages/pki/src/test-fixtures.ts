/**
 * Shared fixtures for the pki unit tests (imported only by `*.test.ts`): a CA hierarchy built
 * with the package's own builders on a fixed clock, and a scratch folder where OpenSSL checks
 * what we sign. The I/O lives here, not in the package proper, which stays free of it.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCertificate, issuerInfo, type CertificateInfo } from './certificate.js';
import { PkiError, type PkiErrorCode } from './errors.js';
import { createSigner, generateKeyPair, publicKeyOf, type KeyObject, type Signer } from './crypto.js';
import type { CertificateDraft, IssuerInfo } from './draft.js';
import type { KeyTypeName } from './algorithms.js';
import { encodeName } from './encode.js';
import type { LintContext } from './lints/lint.js';
import { parseName, type SubjectName } from './names.js';
import { encodePem } from './pem.js';
import { intermediateDraft, leafDraft, ocspSignerDraft, rootDraft, type PublicUrls } from './profiles.js';
import { newSerial } from './serial.js';
import { lintAndSign } from './sign.js';

export const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

/** The tests' clock: whole seconds, far from any UTCTime/GeneralizedTime boundary. */
export const NOW = new Date('2030-01-01T00:00:00Z');
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
export const at = (offsetMs: number): Date => new Date(NOW.getTime() + offsetMs);

export const URLS: PublicUrls = {
  ocsp: 'http://status.test:9080/ocsp',
  caIssuers: 'http://status.test:9080/ca/int.crt',
  crl: 'http://status.test:9080/crl/int.crl',
};

export interface TestCa {
  der: Uint8Array;
  pem: string;
  cert: CertificateInfo;
  signer: Signer;
  info: IssuerInfo;
}

/** `signer` holds the key certified by `der`, so the CA can issue in turn. */
function finish(der: Uint8Array, signer: Signer): TestCa {
  const cert = parseCertificate(der);
  return { der, pem: encodePem('CERTIFICATE', der), cert, signer, info: issuerInfo(cert, signer) };
}

/** A self-signed EC P-384 root, linted and signed like the real one. */
export function makeRoot(opts: { commonName?: string; notAfter?: Date } = {}): TestCa {
  const commonName = opts.commonName ?? 'Test Root';
  const signer = createSigner(generateKeyPair('EC-P384').privateKey);
  const draft = rootDraft({
    serial: newSerial(random).bytes,
    subjectDer: encodeName({ commonName, organization: 'Shortleaf Test' }),
    commonName,
    publicKey: signer.publicKey,
    notBefore: at(-DAY),
    notAfter: opts.notAfter ?? at(3650 * DAY),
  });
  return finish(lintAndSign(draft, signer, { issuer: null }), signer);
}

/** An EC P-256 intermediate under `root`, optionally name-constrained. */
export function makeIntermediate(
  root: TestCa,
  opts: { commonName?: string; permitDns?: string[]; permitUri?: string[]; key?: KeyObject } = {},
): TestCa {
  const commonName = opts.commonName ?? 'Test Intermediate';
  const signer = createSigner(opts.key ?? generateKeyPair('EC-P256').privateKey);
  const draft = intermediateDraft({
    serial: newSerial(random).bytes,
    subjectDer: encodeName({ commonName, organization: 'Shortleaf Test' }),
    commonName,
    publicKey: signer.publicKey,
    notBefore: at(-HOUR),
    notAfter: at(365 * DAY),
    issuer: root.info,
    permitDns: opts.permitDns ?? [],
    permitUri: opts.permitUri ?? [],
  });
  return finish(lintAndSign(draft, root.signer, { issuer: root.info }), signer);
}

/** A delegated OCSP responder certificate under `issuer` (RFC 6960 §4.2.2.2), valid for a day. */
export function makeOcspSigner(issuer: TestCa, opts: { commonName?: string } = {}): TestCa {
  const commonName = opts.commonName ?? 'Test OCSP Responder';
  const signer = createSigner(generateKeyPair('EC-P256').privateKey);
  const draft = ocspSignerDraft({
    serial: newSerial(random).bytes,
    subjectDer: encodeName({ commonName, organization: 'Shortleaf Test' }),
    commonName,
    publicKey: signer.publicKey,
    notBefore: at(-HOUR),
    notAfter: at(DAY),
    issuer: issuer.info,
  });
  return finish(lintAndSign(draft, issuer.signer, { issuer: issuer.info }), signer);
}

export interface TestLeaf {
  key: KeyObject;
  names: SubjectName[];
  draft: CertificateDraft;
  /** What a real issuance would lint the draft with. */
  ctx: Omit<LintContext, 'rules'>;
}

/** A 24-hour leaf draft for `names` (the first is the CN), backdated one minute as the authority does. */
export function leafFor(
  issuer: TestCa,
  names: readonly string[],
  opts: { keyType?: KeyTypeName; key?: KeyObject; commonName?: string | null; serial?: Uint8Array } = {},
): TestLeaf {
  const key = opts.key ?? generateKeyPair(opts.keyType ?? 'EC-P256').privateKey;
  const parsed = names.map(parseName);
  const draft = leafDraft({
    serial: opts.serial ?? newSerial(random).bytes,
    commonName: opts.commonName === undefined ? (names[0] ?? null) : opts.commonName,
    names: parsed,
    publicKey: publicKeyOf(key),
    notBefore: at(-MINUTE),
    notAfter: at(DAY),
    issuer: issuer.info,
    urls: URLS,
  });
  return { key, names: parsed, draft, ctx: { issuer: issuer.info, authorizedNames: parsed, maxLifetimeMs: DAY } };
}

export interface OpenSslResult {
  ok: boolean;
  /** stdout and stderr together: OpenSSL writes verdicts to either. */
  output: string;
}

/** Room for `openssl crl -text` of a CRL with 100,000 entries (~10 MB of text). */
const MAX_OUTPUT = 256 * 1024 * 1024;

/** A scratch folder and the `openssl` binary, the independent checker of what we produce. */
export class OpenSsl {
  readonly dir = mkdtempSync(join(tmpdir(), 'pki-'));

  /** Writes a file into the scratch folder and returns its path. */
  write(name: string, content: string | Uint8Array): string {
    const path = join(this.dir, name);
    writeFileSync(path, content);
    return path;
  }

  /**
   * Runs openssl, never throwing: callers assert on `ok` and the text. Both streams are kept even
   * on success, because some verdicts (`req -verify`) are printed to stderr with exit status 0.
   */
  try(args: readonly string[]): OpenSslResult {
    const r = spawnSync('openssl', args, {
      cwd: this.dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: MAX_OUTPUT,
    });
    if (r.error !== undefined) throw r.error;
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  }

  /** Runs openssl and returns stdout alone, throwing with OpenSSL's own words when it fails. */
  run(args: readonly string[]): string {
    try {
      return execFileSync('openssl', args, {
        cwd: this.dir,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: MAX_OUTPUT,
      });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`openssl ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
    }
  }

  /**
   * `openssl req -verify`: OpenSSL 3.0 exits 0 even when the self-signature is wrong, so the verdict
   * is read from its text.
   */
  verifyCsr(file: string): boolean {
    const r = this.try(['req', '-in', file, '-verify', '-noout']);
    return r.ok && /self-signature verify OK/.test(r.output) && !/verify failure/.test(r.output);
  }

  /** `openssl verify` of `leaf` against `root` and `intermediate`, at the tests' clock. */
  verify(root: string, intermediate: string | null, leaf: string, extra: readonly string[] = []): OpenSslResult {
    return this.try([
      'verify',
      '-x509_strict',
      '-attime',
      String(NOW.getTime() / 1000),
      '-CAfile',
      root,
      ...(intermediate === null ? [] : ['-untrusted', intermediate]),
      ...extra,
      leaf,
    ]);
  }

  /**
   * `openssl ocsp` with the chain checked at the tests' clock. OpenSSL compares a response's
   * thisUpdate/nextUpdate with the real clock whatever -attime says (OCSP_check_validity), so the
   * tolerated skew (-validity_period) is stretched to reach the tests' clock from today.
   */
  ocsp(args: readonly string[]): OpenSslResult {
    const skew = Math.ceil(Math.abs(NOW.getTime() - Date.now()) / 1000) + DAY / 1000;
    return this.try(['ocsp', ...args, '-attime', String(NOW.getTime() / 1000), '-validity_period', String(skew)]);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** OpenSSL's colon-separated upper-case hex, as it prints key identifiers. */
export const opensslHex = (bytes: Uint8Array): string =>
  Buffer.from(bytes).toString('hex').toUpperCase().match(/../g)!.join(':');

/** Asserts that `fn` throws a PkiError with this code and a message containing `fragment`. */
export function assertPkiError(fn: () => unknown, code: PkiErrorCode, fragment: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (typeof fragment === 'string') assert.ok(err.message.includes(fragment), `message was: ${err.message}`);
    else assert.match(err.message, fragment);
    return true;
  });
}
