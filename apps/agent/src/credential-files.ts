import { Buffer } from 'node:buffer';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { encodeCertificates, isIssuedBy, readCertificates, type CertificateInfo } from '@shortleaf/pki';
import {
  ensureFolder,
  fsyncFolder,
  isTempPathFor,
  listTempFiles,
  writeFileAtomic,
  writeTempFile,
} from './atomic-file.js';

/** Where the agent keeps its credential; `chain` is optional (the cert file holds the chain too). */
export interface CredentialPaths {
  cert: string;
  key: string;
  chain?: string;
}

/** certPem: the leaf followed by its chain (what the cert file holds); chainPem: the chain alone; keyPem: PKCS#8 PEM. */
export interface Credentials {
  certPem: string;
  chainPem: string;
  keyPem: string;
}

export type CredentialFilesErrorCode =
  /** Two of the configured paths are the same file. */
  | 'badPaths'
  /** A file (or a credential about to be written) does not hold what it should, or cannot be read. */
  | 'badFile'
  /** The certificate exists without the key, or the key without the certificate. */
  | 'incomplete'
  /** The private key is not the one the leaf certificate certifies. */
  | 'keyMismatch'
  /** The chain does not start with the leaf's issuer. */
  | 'chainMismatch'
  /** A journal left by an interrupted write cannot be read; an operator has to look at it. */
  | 'badJournal';

/** Why credential files cannot be read or written. Messages name files, never key material. */
export class CredentialFilesError extends Error {
  override readonly name = 'CredentialFilesError';
  readonly code: CredentialFilesErrorCode;

  constructor(code: CredentialFilesErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

const KEY_MODE = 0o600;
const PUBLIC_MODE = 0o644;

interface Rename {
  from: string;
  to: string;
}

interface Journal {
  version: 1;
  renames: Rename[];
}

/** The journal of a multi-file replacement sits beside the certificate: `CERT.pending`. */
const journalPath = (paths: CredentialPaths): string => `${resolve(paths.cert)}.pending`;

/** The files of a credential in the order they are replaced: key, chain, then the certificate last. */
function targets(paths: CredentialPaths, next: Credentials): Array<{ path: string; data: string; mode: number }> {
  return [
    { path: resolve(paths.key), data: next.keyPem, mode: KEY_MODE },
    ...(paths.chain === undefined ? [] : [{ path: resolve(paths.chain), data: next.chainPem, mode: PUBLIC_MODE }]),
    { path: resolve(paths.cert), data: next.certPem, mode: PUBLIC_MODE },
  ];
}

function readIfPresent(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function leafOf(certPem: string): CertificateInfo | null {
  try {
    return readCertificates(certPem)[0] ?? null;
  } catch {
    return null;
  }
}

/** Whether a PEM private key matches the leaf (first certificate) of certPem. */
export function keyMatchesCertificate(keyPem: string, certPem: string): boolean {
  const leaf = leafOf(certPem);
  if (leaf === null) return false;
  try {
    // KeyObject.equals compares the key itself, not one encoding of it.
    return createPublicKey(createPrivateKey(keyPem)).equals(leaf.publicKey.keyObject);
  } catch {
    return false;
  }
}

function issues(leaf: CertificateInfo, issuer: CertificateInfo): boolean {
  try {
    return isIssuedBy(leaf, issuer);
  } catch {
    return false;
  }
}

/**
 * Checks that a key, certificate and chain belong together: the key is the leaf's, and the
 * certificate after the leaf (in the cert file and in the chain, when there is one) issued it.
 * `names` says what to call each part in messages; key material never appears in them.
 */
function checkMatch(
  c: { certPem: string; keyPem: string; chainPem: string | null },
  names: { cert: string; key: string; chain: string },
): void {
  let certs: CertificateInfo[];
  try {
    certs = readCertificates(c.certPem);
  } catch {
    certs = [];
  }
  const leaf = certs[0];
  if (leaf === undefined) throw new CredentialFilesError('badFile', `${names.cert} does not hold a PEM certificate`);
  try {
    createPrivateKey(c.keyPem);
  } catch {
    // Not the cause's text either: it is generic, but it is about the key.
    throw new CredentialFilesError('badFile', `${names.key} does not hold an unencrypted PEM private key`);
  }
  if (!keyMatchesCertificate(c.keyPem, c.certPem)) {
    throw new CredentialFilesError(
      'keyMismatch',
      `the private key in ${names.key} does not match the certificate in ${names.cert}`,
    );
  }
  const bundled = certs[1];
  if (bundled !== undefined && !issues(leaf, bundled)) {
    throw new CredentialFilesError('chainMismatch', `the second certificate in ${names.cert} did not issue its leaf`);
  }
  if (c.chainPem !== null && c.chainPem.trim() !== '') {
    let chain: CertificateInfo[];
    try {
      chain = readCertificates(c.chainPem);
    } catch {
      chain = [];
    }
    const first = chain[0];
    if (first === undefined) throw new CredentialFilesError('badFile', `${names.chain} does not hold PEM certificates`);
    if (!issues(leaf, first))
      throw new CredentialFilesError(
        'chainMismatch',
        `the first certificate in ${names.chain} did not issue the leaf in ${names.cert}`,
      );
  }
}

function readJournal(path: string): Rename[] | null {
  const raw = readIfPresent(path);
  if (raw === null) return null;
  const refuse = (why: string): never => {
    throw new CredentialFilesError(
      'badJournal',
      `${path} (left by an interrupted write) ${why}; inspect the credential files, then delete it`,
    );
  };
  let journal: Partial<Journal>;
  try {
    journal = JSON.parse(raw.toString('utf8')) as Partial<Journal>;
  } catch {
    return refuse('is not JSON');
  }
  if (journal.version !== 1 || !Array.isArray(journal.renames)) return refuse('is not a version 1 journal');
  for (const r of journal.renames as unknown[]) {
    const { from, to } = (r ?? {}) as Partial<Rename>;
    // Only ever rename one of our temporary files onto the file it was made for.
    if (typeof from !== 'string' || typeof to !== 'string' || !isTempPathFor(to, from))
      return refuse('lists a rename that is not ours');
  }
  return journal.renames;
}

/**
 * Finishes or undoes a write that a kill interrupted, so that the files match again. With a
 * journal (`CERT.pending`), the renames it lists whose temporary files still exist are done (roll
 * forward: every temporary file was complete and fsynced before the journal was written), then
 * the journal is deleted. Temporary files without a journal belong to a write that never reached
 * its first rename and are deleted. Call it at start-up; `readCredentials` and `writeCredentials`
 * call it too. Assumes one writer per set of files.
 */
export function recoverCredentials(paths: CredentialPaths): void {
  const journal = journalPath(paths);
  const renames = readJournal(journal);
  if (renames !== null) {
    for (const { from, to } of renames) {
      try {
        renameSync(from, to);
      } catch (err) {
        // Already renamed before the kill.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    for (const folder of new Set(renames.map((r) => dirname(r.to)))) fsyncFolder(folder);
    rmSync(journal, { force: true });
    fsyncFolder(dirname(journal));
  }
  const files = [
    resolve(paths.key),
    resolve(paths.cert),
    journal,
    ...(paths.chain === undefined ? [] : [resolve(paths.chain)]),
  ];
  for (const file of files) for (const tmp of listTempFiles(file)) rmSync(tmp, { force: true });
}

/**
 * Replaces the credential files so that key, certificate and chain match each other on disk,
 * even if the agent is killed at any moment. Each file is replaced by a temporary file in its
 * own folder (the key created 0600, the others 0644, never chmod-ed after), fsynced, renamed over
 * it, and the folder fsynced. Only files whose content changes are replaced: a renewal without
 * a new key or chain rewrites the certificate alone, one rename, so the trio matches at every
 * instant. When several files change (a new key, or a new chain), every temporary file is
 * written and fsynced first, then a journal `CERT.pending` listing the renames, then the renames
 * (key, chain, certificate), then the journal is deleted.
 *
 * The window that remains: between the key rename and the certificate rename of such a
 * multi-file write (microseconds, or until restart if the agent is killed right there), the files
 * on disk do not match; a process reading them then (a proxy reloading on its own) sees a new key
 * with the old certificate. `recoverCredentials`, run at the agent's next start, rolls the write
 * forward from the journal. Refuses (CredentialFilesError) a key that does not match the leaf.
 */
export function writeCredentials(paths: CredentialPaths, next: Credentials): void {
  const all = targets(paths, next);
  if (new Set(all.map((t) => t.path)).size !== all.length) {
    throw new CredentialFilesError('badPaths', 'the certificate, key and chain paths must be three different files');
  }
  checkMatch(next, { cert: 'the new certificate', key: 'the new key', chain: 'the new chain' });
  recoverCredentials(paths);

  const changed = all.filter((t) => {
    const current = readIfPresent(t.path);
    return current === null || !current.equals(Buffer.from(t.data, 'utf8'));
  });
  const [only] = changed;
  if (only === undefined) return;
  if (changed.length === 1) {
    writeFileAtomic(only.path, only.data, only.mode);
    return;
  }

  const renames: Rename[] = [];
  try {
    for (const t of changed) {
      ensureFolder(t.path, t.mode);
      renames.push({ from: writeTempFile(t.path, t.data, t.mode), to: t.path });
    }
  } catch (err) {
    for (const r of renames) rmSync(r.from, { force: true });
    throw err;
  }
  // The temporary files must be durable before the journal that promises them is.
  for (const folder of new Set(renames.map((r) => dirname(r.to)))) fsyncFolder(folder);
  const journal = journalPath(paths);
  const record: Journal = { version: 1, renames };
  writeFileAtomic(journal, `${JSON.stringify(record)}\n`, PUBLIC_MODE);
  for (const r of renames) renameSync(r.from, r.to);
  for (const folder of new Set(renames.map((r) => dirname(r.to)))) fsyncFolder(folder);
  rmSync(journal);
  fsyncFolder(dirname(journal));
}

/**
 * Finishes or undoes a write a kill interrupted (see `recoverCredentials`), then reads the files;
 * null when there are none yet. Throws a CredentialFilesError if they exist but do not parse or
 * do not match. Without a chain file (or with `chain` unset), `chainPem` is what follows the leaf
 * in the certificate file.
 */
export function readCredentials(paths: CredentialPaths): Credentials | null {
  recoverCredentials(paths);
  const cert = readIfPresent(paths.cert)?.toString('utf8') ?? null;
  const key = readIfPresent(paths.key)?.toString('utf8') ?? null;
  const chain = paths.chain === undefined ? null : (readIfPresent(paths.chain)?.toString('utf8') ?? null);
  if (cert === null && key === null) return null;
  if (cert === null) throw new CredentialFilesError('incomplete', `${paths.key} exists but ${paths.cert} does not`);
  if (key === null) throw new CredentialFilesError('incomplete', `${paths.cert} exists but ${paths.key} does not`);
  checkMatch(
    { certPem: cert, keyPem: key, chainPem: chain },
    { cert: paths.cert, key: paths.key, chain: paths.chain ?? '' },
  );
  const chainPem =
    chain ??
    encodeCertificates(
      readCertificates(cert)
        .slice(1)
        .map((c) => c.der),
    );
  return { certPem: cert, chainPem, keyPem: key };
}
