// GET /api/v1/provisioners/NAME, what `shortleaf login` learns its OpenID provider from: an oidc
// provisioner's issuer, client id and scopes, and nothing more of any provisioner (no key, no
// policy); unknown names and other methods are problem documents.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Hono } from 'hono';
import { AUD, T0, addProvisioner, createTestCa, type TestCa } from '../../authority/src/test-fixtures.js';
import { createApiApp } from './app.js';
import { PROBLEM_TYPE_PREFIX } from './problems.js';
import { provisionerInfo } from './provisioner-info.js';

const ISSUER = 'https://login.example.com/realms/eng';

describe('GET /api/v1/provisioners/NAME', () => {
  let ca: TestCa;
  let app: Hono;

  before(async () => {
    ca = await createTestCa();
    await addProvisioner(ca.store, 'ops', { names: { dns: ['*.svc.internal'] } });
    await ca.store.addProvisioner({
      name: 'engineers',
      type: 'oidc',
      publicJwk: null,
      policy: JSON.stringify({ names: { dns: ['*.eng.example'] } }),
      options: JSON.stringify({ issuer: ISSUER, audience: 'shortleaf-cli', maxTokenAge: '10m' }),
      createdAt: T0,
    });
    app = createApiApp({
      authority: ca.authority,
      signAudiences: [AUD],
      clientCertificate: () => null,
      requester: () => 'test',
      roots: [ca.root.certificate.der],
      logger: ca.logger,
      maxBodyBytes: 64 * 1024,
      getProvisioner: (name) => ca.store.getProvisioner(name),
    });
  });
  after(() => ca.close());

  it("tells an oidc provisioner's issuer, client id and default scopes, and nothing else", async () => {
    const res = await app.request('/api/v1/provisioners/engineers');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      name: 'engineers',
      type: 'oidc',
      oidc: { issuer: ISSUER, clientId: 'shortleaf-cli', scopes: ['openid', 'email', 'profile'] },
    });
  });

  it("tells a JWK provisioner's name and type only: never its key or policy", async () => {
    const res = await app.request('/api/v1/provisioners/ops');
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.deepEqual(JSON.parse(text), { name: 'ops', type: 'jwk' });
    assert.ok(!text.includes('svc.internal') && !text.includes('"x"'), text);
  });

  it('answers an unknown name with a notFound problem', async () => {
    const res = await app.request('/api/v1/provisioners/nobody');
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    const body = (await res.json()) as { type: string; detail: string };
    assert.equal(body.type, `${PROBLEM_TYPE_PREFIX}notFound`);
    assert.match(body.detail, /no provisioner named "nobody"/);
  });

  it('is read-only: a POST is not a route', async () => {
    const res = await app.request('/api/v1/provisioners/engineers', { method: 'POST' });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { type: string }).type, `${PROBLEM_TYPE_PREFIX}notFound`);
  });

  it('is absent when the server wires no provisioner reader', async () => {
    const bare = createApiApp({
      authority: ca.authority,
      signAudiences: [AUD],
      clientCertificate: () => null,
      requester: () => 'test',
      roots: [ca.root.certificate.der],
      logger: ca.logger,
      maxBodyBytes: 64 * 1024,
    });
    assert.equal((await bare.request('/api/v1/provisioners/engineers')).status, 404);
  });
});

describe('provisionerInfo', () => {
  const oidc = (options: unknown) => provisionerInfo({ name: 'e', type: 'oidc', options: JSON.stringify(options) });

  it('keeps configured scopes, adding openid when they leave it out', () => {
    assert.deepEqual(oidc({ issuer: ISSUER, audience: 'c', scopes: ['email', 'groups'] }).oidc?.scopes, [
      'openid',
      'email',
      'groups',
    ]);
  });

  it('gives no login details for options it cannot read', () => {
    assert.deepEqual(oidc({ issuer: ISSUER }), { name: 'e', type: 'oidc' });
    assert.deepEqual(provisionerInfo({ name: 'e', type: 'oidc', options: '{not json' }), { name: 'e', type: 'oidc' });
    assert.deepEqual(
      provisionerInfo({ name: 'k', type: 'kubernetes', options: JSON.stringify({ issuer: ISSUER, audience: 'a' }) }),
      { name: 'k', type: 'kubernetes' },
    );
  });
});
