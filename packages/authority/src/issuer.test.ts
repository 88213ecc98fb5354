import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  encodePem,
  exportPrivateKey,
  generateKeyPair,
  isIssuedBy,
  parseCertificate,
  parseCsr,
  publicKeyOf,
  readCertificate,
} from '@shortleaf/pki';
import { SqliteStore, StoreError } from '@shortleaf/store';
import { assertUsableIntermediate, createIntermediateKey, importIntermediate, loadActiveIssuer } from './issuer.js';
import type { KeySealer } from './ports.js';
import {
  PASSPHRASE,
  T0,
  createTestCa,
  foreignLeaf,
  makeCsr,
  makeRoot,
  passphraseSealer,
  rejectsWith,
  signIntermediate,
  type TestCa,
  type TestRoot,
} from './test-fixtures.js';

const pem = (der: Uint8Array) => encodePem('CERTIFICATE', der);

/** A CA certificate for the root's own key under another subject, signed by the root without lints: not self-signed, but a root key. */
function sneakyRootKeyCa(root: TestRoot): Uint8Array {
  return signIntermediate(root, root.signer.publicKey, { commonName: 'Innocent Intermediate', lint: false });
}

/** Counts unseal calls, to show a refusal happens before any key is decrypted. */
function countingSealer(inner: KeySealer): KeySealer & { unseals: number } {
  const s = { unseals: 0, seal: inner.seal, unseal: (b: Uint8Array, c: string) => (s.unseals++, inner.unseal(b, c)) };
  return s;
}

describe('the server never holds a root key', () => {
  let ca: TestCa;
  before(async () => {
    ca = await createTestCa();
  });
  after(() => ca.close());

  it('loads the active intermediate, with a signer for its own key', async () => {
    const issuer = await loadActiveIssuer(ca.store, ca.sealer);
    assert.equal(issuer.name, 'primary');
    assert.equal(issuer.id, 'int-1');
    assert.ok(Buffer.from(issuer.certificate.der).equals(ca.intermediateDer));
    assert.ok(Buffer.from(issuer.signer.publicKey.spki).equals(issuer.certificate.publicKey.spki));
    assert.equal(issuer.roots.length, 1);
    assert.ok(Buffer.from(issuer.roots[0]!.der).equals(ca.root.certificate.der));
    assert.ok(isIssuedBy(issuer.certificate, ca.root.certificate));
    assert.equal(issuer.certificate.isCa, true);
    assert.equal(issuer.certificate.pathLen, 0);
  });

  it('seals the intermediate key: the stored blob is not the key, and opens only with the passphrase and its row', async () => {
    const row = await ca.store.getIssuerByName('primary');
    assert.ok(row !== null);
    assert.equal(Buffer.from(row.sealedKey.subarray(0, 4)).toString('ascii'), 'SLS2');
    const pkcs8 = await ca.sealer.unseal(row.sealedKey, 'issuer:int-1');
    assert.equal(Buffer.from(row.sealedKey).indexOf(Buffer.from(pkcs8)), -1, 'no plaintext key in the row');
    await rejectsWith(ca.sealer.unseal(row.sealedKey, 'issuer:other'), 'unsealFailed', 'cannot unseal', StoreError);
  });

  it('assertUsableIntermediate refuses the root itself', () => {
    assert.throws(
      () => assertUsableIntermediate(ca.root.certificate, [ca.root.certificate]),
      (e: Error & { code?: string }) => e.code === 'rootKeyRefused' && /never holds a root private key/.test(e.message),
    );
    assert.throws(
      () => assertUsableIntermediate(ca.root.certificate, []),
      (e: Error & { code?: string }) => e.code === 'rootKeyRefused',
    );
  });

  it('assertUsableIntermediate refuses a CA that reuses the root key but is not self-signed', () => {
    const sneaky = parseCertificate(sneakyRootKeyCa(ca.root));
    assert.equal(sneaky.selfSigned, false);
    assert.equal(sneaky.isCa, true);
    assert.ok(isIssuedBy(sneaky, ca.root.certificate), 'it chains: only the key check stops it');
    assert.throws(
      () => assertUsableIntermediate(sneaky, [ca.root.certificate]),
      (e: Error & { code?: string }) => e.code === 'rootKeyRefused' && /uses a root key/.test(e.message),
    );
  });

  it('assertUsableIntermediate refuses a leaf and a CA of another root', () => {
    const leaf = parseCertificate(foreignLeaf(ca.root, { names: ['x.internal'], publicKey: makeCsr().publicKey }));
    assert.throws(
      () => assertUsableIntermediate(leaf, [ca.root.certificate]),
      (e: Error & { code?: string }) => e.code === 'issuerMismatch' && /not a CA certificate/.test(e.message),
    );
    const other = makeRoot({ commonName: 'Other Root' });
    const stranger = parseCertificate(signIntermediate(other, makeCsr().publicKey));
    assert.throws(
      () => assertUsableIntermediate(stranger, [ca.root.certificate]),
      (e: Error & { code?: string }) => e.code === 'issuerMismatch' && /does not chain/.test(e.message),
    );
    assert.equal(
      assertUsableIntermediate(readCertificate(ca.intermediateDer), [other.certificate, ca.root.certificate]).der,
      ca.root.certificate.der,
    );
  });

  it('refuses to load with the wrong passphrase, without repeating it', async () => {
    const err = await rejectsWith(
      loadActiveIssuer(ca.store, passphraseSealer('wrong-pass')),
      'unsealFailed',
      'wrong passphrase',
      StoreError,
    );
    assert.ok(!err.message.includes('wrong-pass') && !err.message.includes(PASSPHRASE));
  });

  describe('importIntermediate', () => {
    let spareCsr: Uint8Array;
    before(async () => {
      spareCsr = await createIntermediateKey(ca.store, ca.sealer, ca.clock, {
        id: 'int-2',
        name: 'spare',
        commonName: 'Spare Intermediate',
      });
    });

    const nothingImported = async () => {
      const row = await ca.store.getIssuerByName('spare');
      assert.equal(row?.certDer, null);
      assert.equal(row?.active, false);
      assert.equal((await ca.store.listRoots()).length, 1);
    };

    it('refuses the root certificate as the intermediate', async () => {
      await rejectsWith(
        importIntermediate(ca.store, ca.clock, { name: 'spare', certificatePem: ca.root.pem, rootPem: ca.root.pem }),
        'rootKeyRefused',
        'root',
      );
      await nothingImported();
    });

    it('refuses a root-key CA certificate as the intermediate', async () => {
      await rejectsWith(
        importIntermediate(ca.store, ca.clock, {
          name: 'spare',
          certificatePem: pem(sneakyRootKeyCa(ca.root)),
          rootPem: ca.root.pem,
        }),
        'rootKeyRefused',
        'root key',
      );
      await nothingImported();
    });

    it('refuses a certificate for another key than the sealed one', async () => {
      const other = signIntermediate(ca.root, makeCsr().publicKey);
      await rejectsWith(
        importIntermediate(ca.store, ca.clock, { name: 'spare', certificatePem: pem(other), rootPem: ca.root.pem }),
        'issuerMismatch',
        'not the key sealed for intermediate spare',
      );
      await nothingImported();
    });

    it('refuses a certificate that does not chain to the given root', async () => {
      const other = makeRoot({ commonName: 'Other Root' });
      const cert = signIntermediate(other, parseCsr(spareCsr).publicKey);
      await rejectsWith(
        importIntermediate(ca.store, ca.clock, { name: 'spare', certificatePem: pem(cert), rootPem: ca.root.pem }),
        'issuerMismatch',
        'does not chain',
      );
      await nothingImported();
    });

    it('refuses a --root that is not a self-signed CA, and an unknown name', async () => {
      const cert = signIntermediate(ca.root, parseCsr(spareCsr).publicKey);
      await rejectsWith(
        importIntermediate(ca.store, ca.clock, {
          name: 'spare',
          certificatePem: pem(cert),
          rootPem: pem(ca.intermediateDer),
        }),
        'issuerMismatch',
        'not a self-signed CA',
      );
      await rejectsWith(
        importIntermediate(ca.store, ca.clock, { name: 'nope', certificatePem: pem(cert), rootPem: ca.root.pem }),
        'issuerMismatch',
        'no intermediate key named nope',
      );
      await nothingImported();
    });

    it('imports a good certificate without displacing the active intermediate', async () => {
      const cert = signIntermediate(ca.root, parseCsr(spareCsr).publicKey);
      const result = await importIntermediate(ca.store, ca.clock, {
        name: 'spare',
        certificatePem: pem(cert),
        rootPem: ca.root.pem,
      });
      assert.equal(result.activated, false);
      assert.equal((await ca.store.getActiveIssuer())?.name, 'primary');
      assert.ok(Buffer.from((await ca.store.getIssuerByName('spare'))!.certDer!).equals(cert));
    });
  });

  it('createIntermediateKey refuses a bad or taken name', async () => {
    await rejectsWith(
      createIntermediateKey(ca.store, ca.sealer, ca.clock, { id: 'x', name: 'Bad Name', commonName: 'x' }),
      'badPolicy',
      'lower-case',
    );
    await rejectsWith(
      createIntermediateKey(ca.store, ca.sealer, ca.clock, { id: 'x', name: 'primary', commonName: 'x' }),
      'badPolicy',
      'already exists',
    );
  });
});

describe('a tampered database cannot make the server load a root key', () => {
  let dir: string;
  let store: SqliteStore;
  let root: TestRoot;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'auth-'));
    store = await SqliteStore.open(join(dir, 'db.sqlite'));
    root = makeRoot();
    await store.addRoot(root.certificate.der, T0);
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes an active issuer row directly, as someone with write access to the file could. */
  async function plant(id: string, keyDer: Uint8Array, certDer: Uint8Array, sealer: KeySealer) {
    await store.createIssuer({
      id,
      name: id,
      sealedKey: await sealer.seal(keyDer, `issuer:${id}`),
      keyAlgorithm: 'EC-P384',
      csrDer: Uint8Array.of(0x30, 0x00),
      createdAt: T0,
    });
    await store.setIssuerCertificate(id, certDer);
    await store.activateIssuer(id, T0);
  }

  it('reports no active intermediate on an empty database', async () => {
    await rejectsWith(loadActiveIssuer(store, passphraseSealer()), 'issuerUnavailable', 'no active intermediate');
  });

  it('refuses a row holding the root key and the root certificate, before unsealing it', async () => {
    const sealer = countingSealer(passphraseSealer());
    await plant('evil-root', exportPrivateKey(root.privateKey), root.certificate.der, sealer);
    await rejectsWith(loadActiveIssuer(store, sealer), 'rootKeyRefused', 'never holds a root private key');
    assert.equal(sealer.unseals, 0, 'the root key was never decrypted');
  });

  it('refuses a row holding the root key behind a CA certificate that is not self-signed', async () => {
    const sealer = countingSealer(passphraseSealer());
    await plant('evil-sneaky', exportPrivateKey(root.privateKey), sneakyRootKeyCa(root), sealer);
    await rejectsWith(loadActiveIssuer(store, sealer), 'rootKeyRefused', 'root key');
    assert.equal(sealer.unseals, 0);
  });

  it('refuses a row whose sealed key does not match its certificate', async () => {
    const { privateKey } = generateKeyPair('EC-P256');
    const cert = signIntermediate(root, publicKeyOf(privateKey));
    await plant('mismatch', exportPrivateKey(generateKeyPair('EC-P256').privateKey), cert, passphraseSealer());
    await rejectsWith(loadActiveIssuer(store, passphraseSealer()), 'issuerMismatch', 'does not match its certificate');
  });

  it('loads a genuine row', async () => {
    const { privateKey } = generateKeyPair('EC-P256');
    await plant(
      'genuine',
      exportPrivateKey(privateKey),
      signIntermediate(root, publicKeyOf(privateKey)),
      passphraseSealer(),
    );
    assert.equal((await loadActiveIssuer(store, passphraseSealer())).name, 'genuine');
  });
});
