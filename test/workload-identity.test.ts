// Workload identity (issue 15) through a real `shortleaf serve`: the test acts as a Kubernetes
// cluster's service-account issuer (an RS256 key in a JWKS file, tokens with exactly the claims a
// kubelet's projected volume carries), `provisioner add --type kubernetes` stores that key set,
// and POST /api/v1/sign with { csr, token } gets a certificate whose SPIFFE ID the provisioner's
// template made from the token's namespace and service account. Refusals are 4xx problems that
// issue nothing.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCsr, csrToPem, generateKeyPair, type SubjectName } from '@shortleaf/pki';
import { idpKey, kubeletClaims, mintIdpToken, type IdpKey } from '../packages/authority/src/provisioners/test-idp.js';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { assertProblem, request } from './helpers/http.js';
import { extension, x509Text } from './helpers/openssl.js';
import { startServer, type RunningServer } from './helpers/server.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const AUDIENCE = 'shortleaf-ca';
const TEMPLATE = {
  uris: ['spiffe://example.org/ns/{namespace}/sa/{serviceaccount}'],
  dnsNames: ['{serviceaccount}.{namespace}.svc.cluster.local'],
  lifetime: '1h',
};

describe('workload identity: a pod gets a certificate with its service-account token', () => {
  const dir = tempDir();
  const data = dir.file('data');
  let server: RunningServer | undefined;
  let ca = '';
  let clusterKey: IdpKey;

  before(async () => {
    clusterKey = idpKey('RS256');
    // What `kubectl get --raw /openid/v1/jwks` prints.
    writeFileSync(dir.file('jwks.json'), JSON.stringify({ keys: [clusterKey.publicJwk] }));
    writeFileSync(dir.file('config.json'), JSON.stringify({ templates: { cluster: TEMPLATE } }));
    await shortleafOk(['init', '--data', data]);
    await shortleafOk([
      'provisioner',
      'add',
      'cluster',
      '--type',
      'kubernetes',
      '--issuer',
      ISSUER,
      '--audience',
      AUDIENCE,
      '--jwks-file',
      dir.file('jwks.json'),
      '--max-token-age',
      '2h',
      '--data',
      data,
      '--allow-uri',
      'spiffe://example.org/ns/prod/*',
      '--allow-dns',
      '*.prod.svc.cluster.local',
      '--max-lifetime',
      '24h',
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
  const kubelet = (namespace: string, over: Record<string, unknown> = {}) =>
    mintIdpToken(clusterKey, {
      ...kubeletClaims({
        issuer: ISSUER,
        audience: AUDIENCE,
        namespace,
        serviceAccount: 'api',
        pod: 'api-6f9c8-2xkqp',
        iat: nowS() - 30,
      }),
      ...over,
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

  it('provisioner list shows the Kubernetes provisioner, its issuer, audience and key ids', async () => {
    const { stdout } = await shortleafOk(['provisioner', 'list', '--data', data]);
    const line = stdout.split('\n').find((l) => l.startsWith('cluster\t'));
    assert.ok(line, stdout);
    assert.match(line, /\tkubernetes\t/);
    assert.ok(line.includes(ISSUER) && line.includes(AUDIENCE) && line.includes(clusterKey.kid), line);
    assert.ok(!line.includes(String(clusterKey.publicJwk.n)), 'the key set is summarised, not printed');
  });

  it('issues a certificate whose SPIFFE ID and DNS name come from the token through the template', async () => {
    const before = await certCount();
    const res = await sign(await kubelet('prod'), [{ kind: 'uri', value: 'spiffe://example.org/ns/prod/sa/api' }]);
    assert.equal(res.status, 201, res.text);
    const text = await x509Text(res.json<{ certificate: string }>().certificate);
    const san = extension(text, 'X509v3 Subject Alternative Name') ?? '';
    assert.match(san, /URI:spiffe:\/\/example\.org\/ns\/prod\/sa\/api\b/);
    assert.match(san, /DNS:api\.prod\.svc\.cluster\.local\b/);
    assert.match(text, /Subject: .*CN\s*=\s*api\.prod\.svc\.cluster\.local/);
    assert.equal(await certCount(), before + 1);
  });

  it('refuses what the cluster did not say, issuing nothing', async () => {
    const before = await certCount();
    // Another namespace: the template makes a name the provisioner's policy does not allow.
    assertProblem(await sign(await kubelet('payments')), 403, 'nameNotAllowed');
    // A token minted for another audience (say, Vault) cannot be replayed here.
    assertProblem(await sign(await kubelet('prod', { aud: ['vault'] })), 401, 'tokenAudience');
    assertProblem(await sign(await kubelet('prod', { exp: nowS() - 120 })), 401, 'tokenExpired');
    assertProblem(await sign(await mintIdpToken(idpKey('RS256'), await claimsOf('prod'))), 401, 'tokenUnknownKey');
    // The CSR may not ask for a name the template did not make.
    assertProblem(
      await sign(await kubelet('prod'), [{ kind: 'uri', value: 'spiffe://example.org/ns/prod/sa/admin' }]),
      403,
      'csrNameNotAuthorized',
    );
    assert.equal(await certCount(), before);
  });

  const claimsOf = async (namespace: string) =>
    kubeletClaims({ issuer: ISSUER, audience: AUDIENCE, namespace, serviceAccount: 'api', pod: 'p', iat: nowS() });

  it('refuses a Kubernetes provisioner it could not verify with, at add', async () => {
    const noKeys = await shortleaf([
      'provisioner',
      'add',
      'k2',
      '--type',
      'kubernetes',
      '--issuer',
      ISSUER,
      '--audience',
      'a',
      '--data',
      data,
    ]);
    assert.notEqual(noKeys.code, 0);
    assert.match(noKeys.stderr, /--jwks-file/);
    writeFileSync(
      dir.file('private.json'),
      JSON.stringify({ keys: [clusterKey.privateKey.export({ format: 'jwk' })] }),
    );
    const priv = await shortleaf([
      'provisioner',
      'add',
      'k3',
      '--type',
      'kubernetes',
      '--issuer',
      ISSUER,
      '--audience',
      'a',
      '--jwks-file',
      dir.file('private.json'),
      '--data',
      data,
    ]);
    assert.notEqual(priv.code, 0);
    assert.match(priv.stderr, /private key/);
    const oidc = await shortleafOk([
      'provisioner',
      'add',
      'engineers',
      '--type',
      'oidc',
      '--issuer',
      'https://idp.example.org',
      '--audience',
      'shortleaf-cli',
      '--scopes',
      'openid,email',
      '--data',
      data,
    ]);
    assert.match(oidc.stdout, /OIDC provisioner engineers added/);
    const { stdout } = await shortleafOk(['provisioner', 'list', '--data', data]);
    assert.doesNotMatch(stdout, /^k[23]\t/m);
    assert.match(stdout, /^engineers\toidc\t.*shortleaf-cli/m);
  });
});
