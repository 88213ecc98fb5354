// The status app's routing across several intermediates: the active one answers the legacy paths,
// each intermediate in service has its own CRL and certificate path, and the lists change as the
// set of intermediates does, without rebuilding the app.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CrlRow } from '@shortleaf/authority';
import { decodePem } from '@shortleaf/pki';
import { createStatusApp, issuerPaths, type PublishedIssuer } from './app.js';

const NOW = new Date('2031-03-01T12:00:00Z');
const bytes = (tag: number, n = 40) => new Uint8Array(n).fill(tag);
const crl = (issuerId: string, number: bigint, tag: number): CrlRow => ({
  issuerId,
  number,
  thisUpdate: NOW,
  nextUpdate: new Date(NOW.getTime() + 86_400_000),
  entries: 0,
  der: bytes(tag, 60),
});

function issuer(name: string, tag: number, crlRow: CrlRow | null): PublishedIssuer {
  return { name, certificate: bytes(tag), crl: () => crlRow };
}

describe('status app with several intermediates', () => {
  const primary = issuer('primary', 1, crl('int-1', 7n, 0xa1));
  const next = issuer('next', 2, crl('int-2', 1n, 0xa2));
  const staged = issuer('staged', 3, null);
  let published: PublishedIssuer[] = [primary, next, staged];
  let roots: Uint8Array[] = [bytes(9)];
  const rootCrls = new Map([
    ['ab'.repeat(32), { ...crl('root', 3n, 0xb1), rootFingerprint: 'ab'.repeat(32), importedAt: NOW }],
  ]);
  const app = createStatusApp({
    issuers: () => published,
    roots: () => roots,
    rootCrl: () => null,
    rootCrlOf: (fp) => rootCrls.get(fp) ?? null,
    crlMaxAgeSeconds: 300,
    now: () => NOW,
    onError: () => undefined,
  });
  const get = async (path: string): Promise<Response> => app.request(`http://status.test${path}`);
  const body = async (path: string) => new Uint8Array(await (await get(path)).arrayBuffer());

  it('/crl and /intermediate.crt are the active (first) intermediate; /crl/{name} each its own', async () => {
    assert.deepEqual(await body('/crl'), primary.crl()!.der);
    assert.deepEqual(await body('/intermediate.crt'), primary.certificate);
    assert.deepEqual(await body(issuerPaths('next').crl), next.crl()!.der);
    assert.deepEqual(await body(issuerPaths('primary').crl), primary.crl()!.der);
    assert.deepEqual(await body(issuerPaths('next').caIssuers), next.certificate);
    const pem = await get('/crl/next.pem');
    assert.equal(pem.status, 200);
    assert.deepEqual(
      decodePem(await pem.text()).map((b) => [b.label, new Uint8Array(b.der)]),
      [['X509 CRL', next.crl()!.der]],
    );
    assert.equal((await get(issuerPaths('next').crl)).headers.get('etag'), '"crl-1-60"');
  });

  it('an unknown name is a 404 problem document, and a staged intermediate without a CRL yet a 404 too', async () => {
    for (const path of ['/crl/nope', '/crl/nope.pem', '/intermediate/nope.crt', '/crl/..%2Fprimary']) {
      const res = await get(path);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers.get('content-type'), 'application/problem+json', path);
      assert.match(
        ((await res.json()) as { detail: string }).detail,
        /no intermediate of that name is in service/,
        path,
      );
    }
    const res = await get('/crl/staged');
    assert.equal(res.status, 404);
    assert.match(((await res.json()) as { detail: string }).detail, /no CRL has been published yet/);
  });

  it('/intermediates.pem lists every intermediate in service, active first; lists follow changes at once', async () => {
    const listed = async () =>
      decodePem(await (await get('/intermediates.pem')).text()).map((b) => new Uint8Array(b.der));
    assert.deepEqual(await listed(), [primary.certificate, next.certificate, staged.certificate]);
    // Activation of next and retirement of the rest: the app reads the set per request.
    published = [next];
    roots = [bytes(9), bytes(8)];
    assert.deepEqual(await listed(), [next.certificate]);
    assert.deepEqual(await body('/crl'), next.crl()!.der);
    assert.equal((await get('/crl/primary')).status, 404, 'an intermediate out of service is no longer published');
    assert.deepEqual(
      decodePem(await (await get('/roots.pem')).text()).map((b) => new Uint8Array(b.der)),
      roots,
      'a second root shows during a root rollover',
    );
  });

  it("/root/{fingerprint}.crl serves each root's CRL, the fingerprint in any of the forms OpenSSL prints", async () => {
    const der = rootCrls.get('ab'.repeat(32))!.der;
    assert.deepEqual(await body(`/root/${'ab'.repeat(32)}.crl`), der);
    assert.deepEqual(await body(`/root/${Array(32).fill('AB').join(':')}.crl`), der);
    assert.equal((await get(`/root/${'cd'.repeat(32)}.crl`)).status, 404, 'a root without an imported CRL');
    for (const path of ['/root/abc.crl', `/root/${'ab'.repeat(32)}.pem`, `/root/${'zz'.repeat(32)}.crl`])
      assert.equal((await get(path)).status, 404, path);
  });
});
