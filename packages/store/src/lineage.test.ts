import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import {
  createSigner,
  encodeName,
  generateKeyPair,
  issuerInfo,
  leafDraft,
  newSerial,
  parseCertificate,
  parseName,
  rootDraft,
  signDraft,
} from '@shortleaf/pki';
import { certificateKeyDigest, keyDigest } from './key-digest.js';
import { defaultMigrationsDir } from './migrate.js';
import { SqliteStore } from './sqlite-store.js';
import { storeError, t0, tempDir } from './test-fixtures.js';

const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

/** A real leaf (self-issued under a throwaway root) and its key, for a row that must carry DER. */
function leaf() {
  const rootKey = generateKeyPair('EC-P256').privateKey;
  const root = createSigner(rootKey);
  const subjectDer = encodeName({ commonName: 'Root' });
  const rootDer = signDraft(
    rootDraft({
      serial: newSerial(random).bytes,
      subjectDer,
      commonName: 'Root',
      publicKey: root.publicKey,
      notBefore: t0,
      notAfter: new Date(t0.getTime() + 86_400_000),
    }),
    root,
  );
  const { privateKey } = generateKeyPair('EC-P256');
  const signer = createSigner(privateKey);
  const serial = newSerial(random);
  const issuer = issuerInfo(parseCertificate(rootDer), root);
  const der = signDraft(
    leafDraft({
      serial: serial.bytes,
      commonName: 'a.internal',
      names: [parseName('a.internal')],
      publicKey: signer.publicKey,
      notBefore: t0,
      notAfter: new Date(t0.getTime() + 3_600_000),
      issuer,
      urls: { ocsp: 'http://s/ocsp', caIssuers: 'http://s/ca', crl: 'http://s/crl' },
    }),
    root,
  );
  return { der, serial: serial.hex, publicKey: signer.publicKey };
}

describe('migration 0005: lineage and blocked keys', () => {
  it('backfills a database made before it: each certificate its own lineage from when it was recorded, its key digest from its DER, keys revoked for keyCompromise blocked', async (t) => {
    const dir = tempDir(t);
    const old = join(dir, 'migrations-0004');
    mkdirSync(old);
    const all = fileURLToPath(defaultMigrationsDir);
    for (const name of readdirSync(all).filter((n) => /^000[1-4]_/.test(n)))
      copyFileSync(join(all, name), join(old, name));
    const path = join(dir, 'ca.db');
    const cert = leaf();
    const before = await SqliteStore.open(path, { migrationsDir: old });
    await before.createIssuer({
      id: 'int-1',
      name: 'primary',
      sealedKey: new Uint8Array(1),
      keyAlgorithm: 'EC-P384',
      csrDer: new Uint8Array(1),
      createdAt: t0,
    });
    await before.close();
    // Rows as schema 0004 held them: no lineage, no key digest.
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(path);
    db.prepare(
      "INSERT INTO certificates (serial, issuer_id, subject, names, not_before, not_after, der, provisioner, requester, status, created_at, issued_at) VALUES (?, 'int-1', 'a.internal', '[\"dns:a.internal\"]', ?, ?, ?, 'ops', 't', 'issued', ?, ?)",
    ).run(
      cert.serial,
      t0.toISOString(),
      new Date(t0.getTime() + 3_600_000).toISOString(),
      Buffer.from(cert.der),
      t0.toISOString(),
      t0.toISOString(),
    );
    db.prepare(
      "INSERT INTO revocations (serial, revoked_at, reason, actor) VALUES (?, ?, 'keyCompromise', 'operator:alice')",
    ).run(cert.serial, t0.toISOString());
    db.close();

    const store = await SqliteStore.open(path);
    try {
      const row = await store.getCertificate(cert.serial);
      assert.equal(row?.lineage, cert.serial);
      assert.equal(row?.renewedFrom, null);
      assert.equal(row?.lineageStartedAt.toISOString(), t0.toISOString());
      assert.equal(row?.spkiSha256, keyDigest(cert.publicKey.keyObject));
      assert.equal(certificateKeyDigest(cert.der), keyDigest(cert.publicKey.keyObject));
      assert.equal((await store.getBlockedKey(row!.spkiSha256!))?.serial, cert.serial);
      // The key is refused from now on, and the refusal writes nothing (the token stays unspent).
      const counts = await store.counts();
      await assert.rejects(
        store.reserveCertificate({
          certificate: {
            serial: 'beef',
            issuerId: 'int-1',
            subject: 'a.internal',
            names: ['dns:a.internal'],
            notBefore: t0,
            notAfter: t0,
            provisioner: 'ops',
            requester: 't',
            createdAt: t0,
            spkiSha256: row!.spkiSha256,
          },
          tokenUse: { provisioner: 'ops', jti: 'jti-blocked', expiresAt: t0 },
          audit: { at: t0, action: 'issue', actor: 't', serial: 'beef', detail: {} },
        }),
        storeError('keyBlocked', 'blocked'),
      );
      // Renewing from a revoked certificate is refused in the same transaction.
      await assert.rejects(
        store.reserveCertificate({
          certificate: {
            serial: 'beef',
            issuerId: 'int-1',
            subject: 'a.internal',
            names: ['dns:a.internal'],
            notBefore: t0,
            notAfter: t0,
            provisioner: 'ops',
            requester: 't',
            createdAt: t0,
            renewedFrom: cert.serial,
            lineage: cert.serial,
            lineageStartedAt: t0,
          },
          audit: { at: t0, action: 'renew', actor: 't', serial: 'beef', detail: {} },
        }),
        storeError('revoked', cert.serial),
      );
      assert.deepEqual(await store.counts(), counts);
    } finally {
      await store.close();
    }
  });
});
