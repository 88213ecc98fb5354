import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eabSealContext } from '@shortleaf/acme';
import { createAuthority, loadActiveIssuer, type KeySealer, type Logger } from '@shortleaf/authority';
import { generateKeyPair, publicKeyOf } from '@shortleaf/pki';
import { initCa } from '../commands/init.js';
import { dataSealer, openStore, sqliteAt } from '../data.js';
import { createAdmin, recordingRevoker, type Admin, type Operator } from './index.js';

// The admin actions against a real development CA (a temporary data directory), called the way
// the console will call them: with an operator who is not the OS user.
describe('admin actions', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-admin-'));
  const alice: Operator = { kind: 'operator', name: 'alice' };
  const lines: { event: string; fields: Record<string, unknown> }[] = [];
  const logger: Logger = {
    info: (event, fields = {}) => lines.push({ event, fields }),
    warn: () => undefined,
    error: () => undefined,
  };
  const clock = { now: () => new Date() };
  const random = (n: number) => new Uint8Array(randomBytes(n));
  let store: Awaited<ReturnType<typeof openStore>>;
  let sealer: KeySealer;
  let admin: Admin;

  before(async () => {
    await initCa({ engine: 'sqlite', dataDir: dir });
    sealer = (await dataSealer(sqliteAt(dir))).sealer;
    store = await openStore(sqliteAt(dir));
    admin = createAdmin({ store, clock, random, logger, sealer, revoke: recordingRevoker({ store, clock, logger }) });
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function issue(): Promise<string> {
    const issuer = await loadActiveIssuer(store, sealer);
    const authority = createAuthority({
      store,
      issuer,
      clock,
      random,
      urls: () => ({
        ocsp: 'http://status.test/ocsp',
        caIssuers: 'http://status.test/ca.crt',
        crl: 'http://status.test/crl',
      }),
      logger,
    });
    const { privateKey } = generateKeyPair('EC-P256');
    return (
      await authority.issueServerCertificate({
        publicKey: publicKeyOf(privateKey),
        names: ['localhost'],
        lifetimeMs: 3_600_000,
      })
    ).serial;
  }

  it('revokes as the operator it is given: the audit log names that operator, not the OS user', async () => {
    const serial = await issue();
    const result = await admin.revoke(alice, { serial, reason: 'superseded', requester: 'console' });
    assert.equal(result.reason, 'superseded');
    const audit = (await store.listAudit({ action: 'revoke' })).filter((e) => e.serial === serial);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.actor, 'operator:alice');
    assert.equal((audit[0]!.detail as { requester?: string }).requester, 'console');
    assert.ok(
      lines.some((l) => l.event === 'admin_revoked' && l.fields.operator === 'alice' && l.fields.serial === serial),
    );
  });

  it('a refused revocation throws its code and records nothing', async () => {
    const before = (await store.listAudit()).length;
    await assert.rejects(admin.revoke(alice, { serial: '00ff', reason: 'superseded', requester: 'console' }), {
      code: 'certificateNotFound',
    });
    assert.equal((await store.listAudit()).length, before);
  });

  it('adds an ACME provisioner and EAB keys for it; the HMAC key is shown once and unseals from the store', async () => {
    await admin.addAcmeProvisioner(alice, {
      name: 'acme-eab',
      policy: { names: { dns: ['*.svc.test'], ip: [], uri: [] } },
      options: { requireEab: true },
    });
    assert.equal((await store.getProvisioner('acme-eab'))?.type, 'acme');
    const { kid, hmacKey } = await admin.addEabKey(alice, 'acme-eab');
    const listed = await admin.listEabKeys(alice, 'acme-eab');
    assert.deepEqual(
      listed.map((k) => [k.kid, k.accountId]),
      [[kid, null]],
    );
    const row = await store.acme.getEabKey(kid);
    assert.equal(
      Buffer.from(await sealer.unseal(row!.sealedKey, eabSealContext('acme-eab', kid))).toString('base64url'),
      hmacKey,
    );
    assert.ok(
      lines.some((l) => l.event === 'admin_eab_key_added' && l.fields.operator === 'alice' && l.fields.kid === kid),
    );
    await assert.rejects(admin.addEabKey(alice, 'admin'), /no ACME provisioner named admin/);
  });

  it('adds a JWK provisioner whose private key goes where it is asked to', async () => {
    const keyOut = join(dir, 'svc.jwk');
    const { kid } = await admin.addJwkProvisioner(alice, { name: 'svc', keyOut, policy: {} });
    assert.ok(existsSync(keyOut));
    assert.equal((await store.getProvisioner('svc'))?.type, 'jwk');
    assert.ok(
      lines.some((l) => l.event === 'admin_provisioner_added' && l.fields.operator === 'alice' && l.fields.kid === kid),
    );
  });

  it('adds a provisioner of any registered type through the one entry point, and refuses an unknown type writing nothing', async () => {
    await admin.addProvisioner(alice, { name: 'acme-generic', type: 'acme', policy: {}, options: {} });
    assert.equal((await store.getProvisioner('acme-generic'))?.type, 'acme');
    await assert.rejects(admin.addProvisioner(alice, { name: 'k8s', type: 'no-such-type', policy: {} }), {
      code: 'unknownProvisionerType',
    });
    assert.equal(await store.getProvisioner('k8s'), null);
  });

  it('refuses to add an EAB key without a sealer rather than prompting', async () => {
    const noSealer = createAdmin({ store, clock, random, logger, revoke: recordingRevoker({ store, clock, logger }) });
    await assert.rejects(noSealer.addEabKey(alice, 'acme-eab'), /needs the data passphrase/);
  });
});
