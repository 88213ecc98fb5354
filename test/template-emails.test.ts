// Email addresses from an OIDC provider's claims through a real `shortleaf serve` (issue 15): an
// OIDC provisioner added with `--allow-email '*@eng.example'` and a template giving `emails`
// issues a certificate OpenSSL reads as `email:alice@eng.example`; an address the policy does not
// allow, a claim that would move the address, an unverified email and a CSR asking for another
// mailbox are each a 4xx problem that issues nothing.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCsr, csrToPem, generateKeyPair, type SubjectName } from '@shortleaf/pki';
import { idpKey, mintIdpToken, type IdpKey } from '../packages/authority/src/provisioners/test-idp.js';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { assertProblem, request } from './helpers/http.js';
import { extension, x509Text } from './helpers/openssl.js';
import { startServer, type RunningServer } from './helpers/server.js';

const ISSUER = 'https://sso.eng.example';
const AUDIENCE = 'shortleaf-cli';
const TEMPLATE = { emails: ['{email}', '{preferred_username}@eng.example'], lifetime: '1h' };

describe('templates give emails from an ID token', () => {
  const dir = tempDir();
  const data = dir.file('data');
  let server: RunningServer | undefined;
  let ca = '';
  let idp: IdpKey;

  before(async () => {
    idp = idpKey('ES256');
    writeFileSync(dir.file('jwks.json'), JSON.stringify({ keys: [idp.publicJwk] }));
    writeFileSync(dir.file('config.json'), JSON.stringify({ templates: { engineers: TEMPLATE } }));
    await shortleafOk(['init', '--data', data]);
    await shortleafOk([
      'provisioner',
      'add',
      'engineers',
      '--type',
      'oidc',
      '--issuer',
      ISSUER,
      '--audience',
      AUDIENCE,
      '--jwks-file',
      dir.file('jwks.json'),
      '--allow-email',
      '*@eng.example',
      '--max-lifetime',
      '8h',
      '--data',
      data,
    ]);
    ca = readFileSync(join(data, 'offline-root', 'root.crt'), 'utf8');
    server = await startServer({ data, args: ['--config', dir.file('config.json')] });
  });

  after(async () => {
    try {
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  const nowS = () => Math.floor(Date.now() / 1000);
  const idToken = (claims: Record<string, unknown>) =>
    mintIdpToken(idp, {
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'user-1234',
      iat: nowS() - 10,
      exp: nowS() + 600,
      email: 'alice@eng.example',
      email_verified: true,
      preferred_username: 'alice.smith',
      ...claims,
    });
  const certCount = async () =>
    (await shortleafOk(['certs', 'list', '--data', data])).stdout.split('\n').filter((l) => l.trim() !== '').length;

  async function sign(token: string, csrNames: SubjectName[] = []) {
    const csr = csrToPem(createCsr(generateKeyPair('EC-P256').privateKey, { commonName: null }, csrNames));
    return request(`${server!.publicUrl}/api/v1/sign`, {
      method: 'POST',
      ca,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ csr, token }),
    });
  }

  it('provisioner list shows the email rule stored with the policy', async () => {
    const { stdout } = await shortleafOk(['provisioner', 'list', '--data', data]);
    assert.match(stdout, /^engineers\toidc\t/m);
    assert.ok(stdout.includes('*@eng.example'), stdout);
  });

  it('issues a certificate carrying the addresses the template made, as OpenSSL reads them', async () => {
    const before = await certCount();
    const res = await sign(await idToken({}), [{ kind: 'email', value: 'alice@eng.example' }]);
    assert.equal(res.status, 201, res.text);
    const text = await x509Text(res.json<{ certificate: string }>().certificate);
    const san = extension(text, 'X509v3 Subject Alternative Name') ?? '';
    assert.equal(san.trim(), 'email:alice@eng.example, email:alice.smith@eng.example');
    assert.doesNotMatch(text, /Subject: .*CN\s*=/, 'no DNS name, so no common name');
    assert.equal(await certCount(), before + 1);
  });

  it('refuses what the provider did not vouch for or the policy does not allow, issuing nothing', async () => {
    const before = await certCount();
    assertProblem(await sign(await idToken({ email: 'alice@evil.example' })), 403, 'nameNotAllowed');
    assertProblem(await sign(await idToken({ preferred_username: 'a@b.com@evil' })), 400, 'templateClaimInvalid');
    assertProblem(await sign(await idToken({ email: 'a@b.com@evil' })), 400, 'templateClaimInvalid');
    assertProblem(await sign(await idToken({ email: '"a b"@eng.example' })), 400, 'templateClaimInvalid');
    // An address the provider has not verified is no claim at all.
    assertProblem(await sign(await idToken({ email_verified: false })), 400, 'templateClaimMissing');
    assertProblem(
      await sign(await idToken({}), [{ kind: 'email', value: 'bob@eng.example' }]),
      403,
      'csrNameNotAuthorized',
    );
    assert.equal(await certCount(), before);
  });
});
