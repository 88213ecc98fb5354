// Names against a real `shortleaf serve` (issue 12): URI policy matches parsed URIs by whole path
// segments, so dot segments, encoded slashes and queries cannot climb out of `…/payments/*`;
// strings that look like IPv4 addresses are not DNS names; a CSR name keeps the kind its tag says.
// Each refusal is a 4xx problem that issues nothing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCsr, csrToPem, generateKeyPair, type SubjectName } from '@shortleaf/pki';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { assertProblem, request } from './helpers/http.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { mintToken } from './helpers/workspace.js';

const POLICY_URI = 'spiffe://example.org/ns/payments/*';

describe('names (issue 12)', () => {
  const dir = tempDir();
  const data = dir.file('data');
  let server: RunningServer | undefined;
  let ca = '';
  const jwks: Record<string, Record<string, string>> = {};

  before(async () => {
    await shortleafOk(['init', '--data', data]);
    await shortleafOk([
      'provisioner',
      'add',
      'payments',
      '--data',
      data,
      '--key-out',
      dir.file('payments.jwk'),
      '--allow-dns',
      '*.payments.internal',
      '--allow-uri',
      POLICY_URI,
    ]);
    ca = readFileSync(join(data, 'offline-root', 'root.crt'), 'utf8');
    for (const [name, file] of [
      ['admin', join(data, 'provisioners', 'admin.jwk')],
      ['payments', dir.file('payments.jwk')],
    ] as const) {
      const { provisioner: _, ...jwk } = JSON.parse(readFileSync(file, 'utf8')) as Record<string, string>;
      jwks[name] = jwk;
    }
    server = await startServer({ data });
  });

  after(async () => {
    try {
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  const certCount = async () =>
    (await shortleafOk(['certs', 'list', '--data', data])).stdout.split('\n').filter((l) => l.trim() !== '').length;

  /** POST /api/v1/sign with a token naming `sans` (first is sub) and a CSR asking for exactly `csrNames`. */
  async function sign(provisioner: string, sans: string[], csrNames: SubjectName[]) {
    const csr = csrToPem(createCsr(generateKeyPair('EC-P256').privateKey, { commonName: null }, csrNames));
    const token = await mintToken({
      provisioner,
      privateJwk: jwks[provisioner]!,
      caUrl: server!.publicUrl,
      subject: sans[0]!,
      sans,
    });
    return request(`${server!.publicUrl}/api/v1/sign`, {
      method: 'POST',
      ca,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ csr, token }),
    });
  }

  it(`issues a SPIFFE ID whole segments below ${POLICY_URI}`, async () => {
    const uri = 'spiffe://example.org/ns/payments/sa/web';
    const r = await sign(
      'payments',
      ['web.payments.internal', uri],
      [
        { kind: 'dns', value: 'web.payments.internal' },
        { kind: 'uri', value: uri },
      ],
    );
    assert.equal(r.status, 201, r.text);
  });

  // Each of these was issued on main under the policy above.
  for (const [uri, reason] of [
    ['spiffe://example.org/ns/payments/../admin', /dot segment/],
    ['spiffe://example.org/ns/payments/%2e%2e/admin', /dot segment/],
    ['spiffe://example.org/ns/payments/..%2fadmin', /encoded slash/],
    ['spiffe://example.org/ns/payments/x?y=1#f', /query or fragment/],
  ] as const) {
    it(`refuses ${uri} with 400 tokenMalformed, issuing nothing`, async () => {
      const before = await certCount();
      const r = await sign(
        'payments',
        ['web.payments.internal', uri],
        [
          { kind: 'dns', value: 'web.payments.internal' },
          { kind: 'uri', value: uri },
        ],
      );
      assert.match(assertProblem(r, 400, 'tokenMalformed').detail, reason);
      assert.equal(await certCount(), before);
    });
  }

  it('refuses a partial-segment prefix the old string match allowed', async () => {
    const uri = 'spiffe://example.org/ns/payments-admin/x';
    const r = await sign(
      'payments',
      ['web.payments.internal', uri],
      [
        { kind: 'dns', value: 'web.payments.internal' },
        { kind: 'uri', value: uri },
      ],
    );
    assert.match(
      assertProblem(r, 403, 'nameNotAllowed').detail,
      /URI spiffe:\/\/example\.org\/ns\/payments-admin\/x is not allowed/,
    );
  });

  for (const name of ['10.20.1.1.', '010.20.1.1', '0x0a.1.1.1', '10.1']) {
    it(`refuses ${name} as a DNS name in a token (it looks like an IPv4 address), issuing nothing`, async () => {
      const before = await certCount();
      const r = await sign('admin', [name], [{ kind: 'dns', value: name }]);
      assert.match(assertProblem(r, 400, 'tokenMalformed').detail, /looks like an IPv4 address/);
      assert.equal(await certCount(), before);
    });
  }

  it('refuses a CSR naming URI:attacker.test for a token authorising DNS:attacker.test (400 badCsr)', async () => {
    const before = await certCount();
    const r = await sign('admin', ['attacker.test'], [{ kind: 'uri', value: 'attacker.test' }]);
    assert.match(assertProblem(r, 400, 'badCsr').detail, /has no scheme/);
    assert.equal(await certCount(), before);
  });

  it('refuses a CSR naming DNS:10.0.0.1 for a token authorising IP:10.0.0.1 (400 badCsr)', async () => {
    const r = await sign('admin', ['10.0.0.1'], [{ kind: 'dns', value: '10.0.0.1' }]);
    assert.match(assertProblem(r, 400, 'badCsr').detail, /looks like an IPv4 address/);
    assert.equal((await sign('admin', ['10.0.0.1'], [{ kind: 'ip', value: '10.0.0.1' }])).status, 201);
  });

  it('provisioner add refuses a URI pattern with a partial-segment "*"', async () => {
    const r = await shortleaf([
      'provisioner',
      'add',
      'prefixy',
      '--data',
      data,
      '--key-out',
      dir.file('prefixy.jwk'),
      '--allow-uri',
      'spiffe://example.org/ns/pay*',
    ]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /may use "\*" only as a whole last path segment/);
  });
});
