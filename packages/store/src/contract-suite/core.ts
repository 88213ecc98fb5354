import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { StoreError } from '../contracts/errors.js';
import type {
  AuditEntry,
  CertificateReservation,
  NewIssuer,
  ProvisionerRecord,
  TokenUse,
} from '../contracts/records.js';
import type { Store } from '../contracts/store.js';
import { bytes, minutes, storeError, t0 } from '../test-fixtures.js';
import type { StoreOpener } from './opener.js';

// Issuers, roots, provisioners, issuance, token uses, audit and settings, as every engine must
// behave. Each test opens a fresh, empty, migrated store.

function issuer(id: string, overrides: Partial<NewIssuer> = {}): NewIssuer {
  return {
    id,
    name: `issuer-${id}`,
    sealedKey: bytes(`sealed-${id}`),
    keyAlgorithm: 'ECDSA-P256',
    csrDer: bytes(`csr-${id}`),
    createdAt: t0,
    ...overrides,
  };
}

async function activeIssuer(store: Store, id = 'int-1'): Promise<string> {
  await store.createIssuer(issuer(id));
  await store.setIssuerCertificate(id, bytes(`cert-${id}`));
  await store.activateIssuer(id, t0);
  return id;
}

function reservation(serial: string, overrides: Partial<CertificateReservation> = {}): CertificateReservation {
  return {
    serial,
    issuerId: 'int-1',
    subject: 'CN=api.internal',
    names: ['api.internal', '10.0.0.7'],
    notBefore: minutes(-1),
    notAfter: minutes(24 * 60),
    provisioner: 'ops',
    requester: 'alice@example.com',
    createdAt: t0,
    ...overrides,
  };
}

function audit(action: string, serial: string | null = null, at = t0): AuditEntry {
  return { at, action, actor: 'provisioner:ops', serial, detail: { note: action, n: 1 } };
}

const token = (jti: string, expiresAt = minutes(5)): TokenUse => ({ provisioner: 'ops', jti, expiresAt });

export function coreContract(engine: string, open: StoreOpener): void {
  describe(`${engine} store: issuance`, () => {
    it('reserves then completes a certificate, with its token use and audit entry', async (t) => {
      const store = await open(t);
      await activeIssuer(store);
      const reserved = reservation('00aa11');
      await store.reserveCertificate({
        certificate: reserved,
        tokenUse: token('jti-1'),
        audit: audit('certificate.reserve', '00aa11'),
      });

      // Without lineage fields a certificate starts its own lineage when it is recorded.
      assert.deepEqual(await store.getCertificate('00aa11'), {
        ...reserved,
        der: null,
        status: 'reserved',
        issuedAt: null,
        renewedFrom: null,
        lineage: '00aa11',
        lineageStartedAt: t0,
        spkiSha256: null,
      });
      const counts = await store.counts();
      assert.equal(counts.certificates, 1);
      assert.equal(counts.token_uses, 1);
      assert.equal(counts.audit_log, 1);

      const der = bytes('signed certificate DER');
      await store.completeCertificate('00aa11', der, minutes(1));
      const issued = await store.getCertificate('00aa11');
      assert.equal(issued?.status, 'issued');
      assert.deepEqual(issued?.der, Buffer.from(der));
      assert.deepEqual(issued?.issuedAt, minutes(1));
      assert.deepEqual(issued?.names, ['api.internal', '10.0.0.7']);
      assert.deepEqual(await store.listAudit(), [audit('certificate.reserve', '00aa11')]);
    });

    it('completes a serial only once', async (t) => {
      const store = await open(t);
      await activeIssuer(store);
      await store.reserveCertificate({ certificate: reservation('01'), audit: audit('reserve', '01') });
      await store.completeCertificate('01', bytes('first'), minutes(1));
      await assert.rejects(store.completeCertificate('01', bytes('second'), minutes(2)), storeError('notFound', '01'));
      assert.deepEqual((await store.getCertificate('01'))?.der, Buffer.from(bytes('first')));
      await assert.rejects(store.completeCertificate('ffff', bytes('x'), minutes(2)), storeError('notFound', 'ffff'));
    });

    it('keeps the TBSCertificate recorded with a reservation, reserved and issued (migration 0008)', async (t) => {
      const store = await open(t);
      await activeIssuer(store);
      const tbs = bytes('to-be-signed certificate DER');
      await store.reserveCertificate({
        certificate: reservation('0f', { tbsDer: tbs }),
        audit: audit('reserve', '0f'),
      });
      assert.deepEqual((await store.getCertificate('0f'))?.tbsDer, Buffer.from(tbs));
      await store.completeCertificate('0f', bytes('signed'), minutes(1));
      assert.deepEqual((await store.getCertificate('0f'))?.tbsDer, Buffer.from(tbs));
      // A reservation without one (made before 0008) reads back without the field.
      await store.reserveCertificate({ certificate: reservation('10'), audit: audit('reserve', '10') });
      assert.equal((await store.getCertificate('10'))?.tbsDer, undefined);
    });

    it('a replayed token is tokenReplayed and writes no certificate or audit entry', async (t) => {
      const store = await open(t);
      await activeIssuer(store);
      await store.reserveCertificate({
        certificate: reservation('0a'),
        tokenUse: token('jti-1'),
        audit: audit('reserve', '0a'),
      });
      const before = await store.counts();
      await assert.rejects(
        store.reserveCertificate({
          certificate: reservation('0b'),
          tokenUse: token('jti-1'),
          audit: audit('reserve', '0b'),
        }),
        storeError('tokenReplayed', 'already been used'),
      );
      assert.deepEqual(await store.counts(), before);
      assert.equal(await store.getCertificate('0b'), null);
    });

    it('the same jti under another provisioner is a different token', async (t) => {
      const store = await open(t);
      await activeIssuer(store);
      await store.reserveCertificate({
        certificate: reservation('0a'),
        tokenUse: token('jti-1'),
        audit: audit('reserve'),
      });
      await store.reserveCertificate({
        certificate: reservation('0b'),
        tokenUse: { ...token('jti-1'), provisioner: 'other' },
        audit: audit('reserve'),
      });
      assert.equal((await store.counts()).token_uses, 2);
    });

    it('a reused serial is serialCollision and leaves the token unspent', async (t) => {
      const store = await open(t);
      await activeIssuer(store);
      await store.reserveCertificate({
        certificate: reservation('0c'),
        tokenUse: token('jti-1'),
        audit: audit('reserve', '0c'),
      });
      const before = await store.counts();
      await assert.rejects(
        store.reserveCertificate({
          certificate: reservation('0c', { subject: 'CN=evil' }),
          tokenUse: token('jti-2'),
          audit: audit('reserve', '0c'),
        }),
        storeError('serialCollision', '0c'),
      );
      assert.deepEqual(await store.counts(), before);
      assert.equal((await store.getCertificate('0c'))?.subject, 'CN=api.internal');
      // The caller retries with a fresh serial and the same token: it must still be usable.
      await store.reserveCertificate({
        certificate: reservation('0d'),
        tokenUse: token('jti-2'),
        audit: audit('reserve', '0d'),
      });
    });

    it('a serial for an unknown issuer is notFound and writes nothing', async (t) => {
      const store = await open(t);
      const before = await store.counts();
      await assert.rejects(
        store.reserveCertificate({
          certificate: reservation('0e', { issuerId: 'ghost' }),
          tokenUse: token('jti-1'),
          audit: audit('reserve'),
        }),
        storeError('notFound', 'ghost'),
      );
      assert.deepEqual(await store.counts(), before);
    });

    it('lists certificates by reservation order, with status, expiry and limit filters', async (t) => {
      const store = await open(t);
      await activeIssuer(store);
      await store.reserveCertificate({
        certificate: reservation('03', { createdAt: minutes(3), notAfter: minutes(100) }),
        audit: audit('r'),
      });
      await store.reserveCertificate({
        certificate: reservation('01', { createdAt: minutes(1), notAfter: minutes(300) }),
        audit: audit('r'),
      });
      await store.reserveCertificate({
        certificate: reservation('02', { createdAt: minutes(2), notAfter: minutes(200) }),
        audit: audit('r'),
      });
      await store.completeCertificate('02', bytes('der'), minutes(4));
      const serials = async (opts?: Parameters<Store['listCertificates']>[0]): Promise<string[]> =>
        (await store.listCertificates(opts)).map((c) => c.serial);

      assert.deepEqual(await serials(), ['01', '02', '03']);
      assert.deepEqual(await serials({ status: 'reserved' }), ['01', '03']);
      assert.deepEqual(await serials({ status: 'issued' }), ['02']);
      assert.deepEqual(await serials({ expiringBefore: minutes(250) }), ['02', '03']);
      assert.deepEqual(await serials({ expiringBefore: minutes(250), status: 'reserved' }), ['03']);
      assert.deepEqual(await serials({ limit: 2 }), ['01', '02']);
      assert.deepEqual(await serials({ limit: 0 }), []);
      await assert.rejects(store.listCertificates({ limit: -1 }), RangeError);
    });

    it('counts the certificates one provisioner recorded for one requester after a time, reserved or issued', async (t) => {
      const store = await open(t);
      await activeIssuer(store);
      const reserve = (serial: string, at: number, overrides: Partial<CertificateReservation> = {}) =>
        store.reserveCertificate({
          certificate: reservation(serial, { createdAt: minutes(at), requester: 'sa:web', ...overrides }),
          audit: audit('r'),
        });
      await reserve('21', 1);
      await reserve('22', 2);
      await reserve('23', 3);
      await store.completeCertificate('22', bytes('der'), minutes(2));
      await reserve('24', 2, { requester: 'sa:db' });
      await reserve('25', 2, { provisioner: 'other' });

      assert.deepEqual(await store.countCertificatesSince('ops', 'sa:web', t0), { count: 3, oldest: minutes(1) });
      // The window starts after `since`: a certificate reserved at that instant has left it.
      assert.deepEqual(await store.countCertificatesSince('ops', 'sa:web', minutes(1)), {
        count: 2,
        oldest: minutes(2),
      });
      assert.deepEqual(await store.countCertificatesSince('ops', 'sa:web', minutes(3)), { count: 0, oldest: null });
      assert.deepEqual(await store.countCertificatesSince('ops', 'sa:db', t0), { count: 1, oldest: minutes(2) });
      assert.deepEqual(await store.countCertificatesSince('other', 'sa:web', t0), { count: 1, oldest: minutes(2) });
      assert.deepEqual(await store.countCertificatesSince('ops', 'nobody', t0), { count: 0, oldest: null });
    });

    it('prunes only token uses that have expired', async (t) => {
      const store = await open(t);
      await activeIssuer(store);
      await store.reserveCertificate({
        certificate: reservation('a1'),
        tokenUse: token('old', minutes(1)),
        audit: audit('r'),
      });
      await store.reserveCertificate({
        certificate: reservation('a2'),
        tokenUse: token('new', minutes(10)),
        audit: audit('r'),
      });
      assert.equal(await store.pruneTokenUses(minutes(5)), 1);
      assert.equal((await store.counts()).token_uses, 1);
      await assert.rejects(
        store.reserveCertificate({
          certificate: reservation('a3'),
          tokenUse: token('new', minutes(10)),
          audit: audit('r'),
        }),
        storeError('tokenReplayed', 'ops'),
      );
    });
  });

  describe(`${engine} store: issuers`, () => {
    it('creates, reads and refuses duplicate ids or names', async (t) => {
      const store = await open(t);
      await store.createIssuer(issuer('a'));
      const before = await store.counts();
      await assert.rejects(store.createIssuer(issuer('a', { name: 'fresh-name' })), storeError('conflict', 'a'));
      await assert.rejects(store.createIssuer(issuer('b', { name: 'issuer-a' })), storeError('conflict', 'issuer-a'));
      assert.deepEqual(await store.counts(), before);

      const got = await store.getIssuer('a');
      assert.deepEqual(got, {
        ...issuer('a'),
        sealedKey: Buffer.from(bytes('sealed-a')),
        csrDer: Buffer.from(bytes('csr-a')),
        certDer: null,
        activatedAt: null,
        active: false,
      });
      assert.deepEqual(await store.getIssuerByName('issuer-a'), got);
      assert.equal(await store.getIssuer('zzz'), null);
      assert.equal(await store.getIssuerByName('zzz'), null);
      assert.equal(await store.getActiveIssuer(), null);
    });

    it('refuses to activate an issuer that is missing or has no certificate yet', async (t) => {
      const store = await open(t);
      await store.createIssuer(issuer('a'));
      await assert.rejects(store.activateIssuer('a', t0), storeError('notFound', 'no certificate yet'));
      await assert.rejects(store.activateIssuer('nope', t0), storeError('notFound', 'nope'));
      await assert.rejects(store.setIssuerCertificate('nope', bytes('c')), storeError('notFound', 'nope'));
      assert.equal(await store.getActiveIssuer(), null);
    });

    it('keeps exactly one issuer active', async (t) => {
      const store = await open(t);
      for (const id of ['a', 'b', 'c']) {
        await store.createIssuer(issuer(id));
        await store.setIssuerCertificate(id, bytes(`cert-${id}`));
      }
      const activeIds = async (): Promise<string[]> =>
        (await store.listIssuers()).filter((i) => i.active).map((i) => i.id);

      await store.activateIssuer('a', minutes(1));
      await store.activateIssuer('b', minutes(2));
      assert.deepEqual(await activeIds(), ['b']);
      assert.equal((await store.getActiveIssuer())?.id, 'b');
      assert.deepEqual((await store.getActiveIssuer())?.activatedAt, minutes(2));
      assert.deepEqual((await store.getActiveIssuer())?.certDer, Buffer.from(bytes('cert-b')));

      await store.activateIssuer('b', minutes(3)); // re-activation keeps the original time
      assert.deepEqual((await store.getActiveIssuer())?.activatedAt, minutes(2));
      await store.activateIssuer('a', minutes(4));
      assert.deepEqual(await activeIds(), ['a']);
      assert.deepEqual((await store.getActiveIssuer())?.activatedAt, minutes(4));
    });
  });

  describe(`${engine} store: roots, provisioners, audit, settings`, () => {
    it('adds roots idempotently under their SHA-256 fingerprint', async (t) => {
      const store = await open(t);
      const root = bytes('root DER');
      const fingerprint = await store.addRoot(root, t0);
      assert.equal(fingerprint, createHash('sha256').update(root).digest('hex'));
      assert.equal(await store.addRoot(root, minutes(1)), fingerprint);
      await store.addRoot(bytes('second root'), minutes(2));
      assert.deepEqual(await store.listRoots(), [Buffer.from(root), Buffer.from(bytes('second root'))]);
    });

    it('adds provisioners and refuses a second one with the same name', async (t) => {
      const store = await open(t);
      const ops: ProvisionerRecord = {
        name: 'ops',
        type: 'jwk',
        publicJwk: '{"kty":"EC"}',
        policy: '{"dns":["*.internal"]}',
        options: '{}',
        createdAt: t0,
      };
      const acme: ProvisionerRecord = {
        name: 'acme',
        type: 'acme',
        publicJwk: null,
        policy: '{}',
        options: '{"requireEab":true}',
        createdAt: t0,
      };
      const { options: _defaulted, ...opsWithoutOptions } = ops;
      await store.addProvisioner(opsWithoutOptions); // options default to {}
      await store.addProvisioner(acme);
      const before = await store.counts();
      await assert.rejects(store.addProvisioner({ ...ops, policy: '{"dns":["*"]}' }), storeError('conflict', 'ops'));
      assert.deepEqual(await store.counts(), before);
      assert.deepEqual(await store.getProvisioner('ops'), ops);
      assert.equal(await store.getProvisioner('nobody'), null);
      assert.deepEqual(await store.listProvisioners(), [acme, ops]);
    });

    it('appends and lists audit entries, filtered by time and limited', async (t) => {
      const store = await open(t);
      await store.appendAudit(audit('one', null, minutes(1)));
      await store.appendAudit(audit('two', 'abcd', minutes(2)));
      await store.appendAudit(audit('three', null, minutes(3)));
      assert.deepEqual(
        (await store.listAudit()).map((e) => e.action),
        ['one', 'two', 'three'],
      );
      assert.deepEqual(await store.listAudit({ since: minutes(2), limit: 1 }), [audit('two', 'abcd', minutes(2))]);
      assert.deepEqual(
        (await store.listAudit({ action: 'three' })).map((e) => e.action),
        ['three'],
      );
      assert.deepEqual(await store.listAudit({ action: 'one', since: minutes(2) }), []);
    });

    it('stores and overwrites settings', async (t) => {
      const store = await open(t);
      assert.equal(await store.getSetting('crl.number'), null);
      await store.setSetting('crl.number', '1');
      await store.setSetting('crl.number', '2');
      assert.equal(await store.getSetting('crl.number'), '2');
      assert.equal((await store.counts()).settings, 1);
    });
  });
}
