// Revocation end to end against a real server: OpenSSL asks the OCSP responder and checks the CRLs,
// curl revokes over mutual TLS and with one-time tokens. OpenSSL, not our parser, judges what we sign.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa, type IssuedLeaf } from './helpers/dev-ca.js';
import { assertProblem, curl, curlWithHeaders, request, type HttpResult } from './helpers/http.js';
import { extension, openssl, opensslResult } from './helpers/openssl.js';
import {
  crlInfo,
  crlVerifies,
  maxAge,
  ocsp,
  parseOcspOutput,
  postPartial,
  type CrlInfo,
} from './helpers/revocation.js';
import { pollUntil, startServer, type RunningServer } from './helpers/server.js';
import { mintToken } from './helpers/workspace.js';

const secondsUntil = (d: Date) => (d.getTime() - Date.now()) / 1000;

describe('revocation: OCSP, CRLs and the revoke API', () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  let devCa: DevCa | undefined;
  let server: RunningServer | undefined;
  const servers: RunningServer[] = [];
  const L: Record<'a' | 'b' | 'c' | 'd' | 'e', IssuedLeaf> = {} as never;
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };
  const srv = () => {
    assert.ok(server, 'the server did not start');
    return server;
  };

  before(async () => {
    devCa = await startDevCa(dir.path, {
      beforeServe: async (data) =>
        void (await shortleafOk(['provisioner', 'add', 'other', '--data', data, '--key-out', f('other.jwk')])),
    });
    server = devCa.server;
    servers.push(server);
    // a: revoked over mTLS; b: revoked with a token; c, d: stay good; e: revoked after a restart.
    for (const name of ['a', 'b', 'c', 'd', 'e'] as const) L[name] = await devCa.issue(`svc-${name}.internal`, name);
  });

  after(async () => {
    try {
      for (const s of servers) await s.stop();
    } finally {
      dir.remove();
    }
  });

  /** `openssl ocsp` against the running responder; `pre` goes first (a digest must precede -cert). */
  const ask = (issuer: string, target: string[], extra: string[] = [], pre: string[] = []) =>
    ocsp([...pre, '-issuer', issuer, ...target, '-url', `${srv().statusUrl}/ocsp`, '-CAfile', ca().roots, ...extra]);
  const leafStatus = async (leaf: IssuedLeaf, extra: string[] = [], pre: string[] = []) => {
    const r = await ask(ca().intermediates, ['-cert', leaf.leaf], extra, pre);
    assert.ok(r.verified, `the response must verify:\n${r.output}`);
    const single = r.single(leaf.leaf);
    assert.ok(single, r.output);
    return { ...single, r };
  };
  /** POST /api/v1/revoke with curl; `as` is the client certificate presented, if any. */
  const revoke = (body: Record<string, unknown>, as?: IssuedLeaf) =>
    curl([
      '--cacert',
      ca().roots,
      ...(as ? ['--cert', as.cert, '--key', as.key] : []),
      '-H',
      'content-type: application/json',
      '--data-binary',
      JSON.stringify(body),
      `${srv().publicUrl}/api/v1/revoke`,
    ]);
  const revokeToken = async (serial: string, provisioner: string, keyFile: string) => {
    const { provisioner: _, ...privateJwk } = JSON.parse(readFileSync(keyFile, 'utf8')) as Record<string, string>;
    return mintToken({
      provisioner,
      privateJwk,
      caUrl: srv().publicUrl,
      subject: serial,
      audience: `${srv().publicUrl}/api/v1/revoke`,
    });
  };
  const fetchCrl = async (): Promise<{ res: HttpResult; info: CrlInfo }> => {
    const res = await curl([`${srv().statusUrl}/crl`]);
    assert.equal(res.status, 200, res.text);
    return { res, info: await crlInfo(res.body) };
  };
  const crlListing = (serial: string) =>
    pollUntil(
      `the CRL to list ${serial}`,
      async () => {
        const crl = await fetchCrl();
        return crl.info.entries.has(serial) ? crl : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
  const verifyWithCrls = (leaf: string, crls: string[]) =>
    opensslResult([
      'verify',
      '-crl_check_all',
      '-CAfile',
      ca().roots,
      '-untrusted',
      ca().intermediates,
      ...crls.flatMap((c) => ['-CRLfile', c]),
      leaf,
    ]);

  it('a fresh leaf is good over OCSP: the response verifies, the nonce is echoed, SHA-256 CertIDs work', async () => {
    const withNonce = await leafStatus(L.a);
    assert.equal(withNonce.status, 'good');
    assert.equal(withNonce.r.nonceWarning, false, `the nonce must be echoed:\n${withNonce.r.output}`);
    assert.equal((await leafStatus(L.a, ['-no_nonce'])).status, 'good');
    const sha256 = await leafStatus(L.a, ['-no_nonce', '-resp_text'], ['-sha256']);
    assert.equal(sha256.status, 'good');
    assert.match(sha256.r.output, /Hash Algorithm: sha256/);
  });

  it('responses come from a delegated responder named by key, with OCSP Signing and OCSP No Check', async () => {
    await leafStatus(L.c, ['-no_nonce', '-respout', f('c-resp.der')]);
    const r = await opensslResult(['ocsp', '-respin', f('c-resp.der'), '-resp_text', '-noverify']);
    const text = r.stdout + r.stderr;
    const id = /Responder Id: ([0-9A-F]{40})$/m.exec(text)?.[1];
    assert.ok(id, `a byKey responder ID (a key hash, not a name):\n${text}`);
    assert.equal(
      extension(text, 'X509v3 Subject Key Identifier')?.replace(/:/g, ''),
      id,
      'the included certificate is the responder',
    );
    assert.equal(extension(text, 'X509v3 Extended Key Usage'), 'OCSP Signing');
    assert.match(text, /OCSP No Check/);
    assert.match(text, /Issuer: O ?= ?Shortleaf, CN ?= ?Shortleaf Intermediate CA/, 'delegated by the intermediate');
  });

  it("the intermediate's own status is good, from the root-delegated responder", async () => {
    const r = await ask(ca().roots, ['-cert', ca().intermediates], ['-resp_text']);
    assert.ok(r.verified, r.output);
    assert.equal(r.single(ca().intermediates)?.status, 'good', r.output);
    assert.match(
      r.output,
      /Issuer: [^\n]*CN ?= ?Shortleaf Development Root CA/,
      'the responder certificate is signed by the root',
    );
    assert.equal(extension(r.output, 'X509v3 Extended Key Usage'), 'OCSP Signing');
  });

  it('a serial never issued is unknown; a CertID of another issuer is unauthorized (6)', async () => {
    const unknown = await ask(ca().intermediates, ['-serial', '0x1234']);
    assert.ok(unknown.verified, unknown.output);
    assert.equal(unknown.single('0x1234')?.status, 'unknown', unknown.output);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    await openssl([
      'req',
      '-x509',
      ...ec,
      '-keyout',
      f('other-ca.key'),
      '-subj',
      '/CN=Throwaway CA',
      '-days',
      '1',
      '-out',
      f('other-ca.pem'),
    ]);
    await openssl([
      'req',
      '-new',
      ...ec,
      '-keyout',
      f('other-leaf.key'),
      '-subj',
      '/CN=x.example',
      '-out',
      f('other-leaf.csr'),
    ]);
    await openssl([
      'x509',
      '-req',
      '-in',
      f('other-leaf.csr'),
      '-CA',
      f('other-ca.pem'),
      '-CAkey',
      f('other-ca.key'),
      '-set_serial',
      '0x42',
      '-days',
      '1',
      '-out',
      f('other-leaf.pem'),
    ]);
    const foreign = await ask(f('other-ca.pem'), ['-cert', f('other-leaf.pem')]);
    assert.equal(foreign.responderError, 'unauthorized (6)', foreign.output);
  });

  it('GET /ocsp/{base64}, percent-encoded or not: a verifying response with RFC 5019 cache headers and 304s', async () => {
    // A request whose base64 has '+', '/' or '=' shows the two URL forms really differ.
    let [b64, leaf, digest] = ['', L.c, [] as string[]];
    for (const [l, pre] of [
      [L.c, []],
      [L.c, ['-sha256']],
      [L.d, []],
      [L.d, ['-sha256']],
    ] as const) {
      await openssl([
        'ocsp',
        ...pre,
        '-issuer',
        ca().intermediates,
        '-cert',
        l.leaf,
        '-reqout',
        f('req.der'),
        '-no_nonce',
      ]);
      [b64, leaf, digest] = [readFileSync(f('req.der')).toString('base64'), l, [...pre]];
      if (/[+/=]/.test(b64)) break;
    }
    assert.match(b64, /[+/=]/);
    for (const path of [encodeURIComponent(b64), b64]) {
      const res = await curlWithHeaders(['-g', `${srv().statusUrl}/ocsp/${path}`]);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.contentType, 'application/ocsp-response');
      writeFileSync(f('get-resp.der'), res.body);
      const v = await opensslResult([
        'ocsp',
        '-respin',
        f('get-resp.der'),
        ...digest,
        '-issuer',
        ca().intermediates,
        '-CAfile',
        ca().roots,
        '-cert',
        leaf.leaf,
        '-resp_text',
        '-no_nonce',
      ]);
      const r = parseOcspOutput(v.stdout + v.stderr);
      assert.ok(r.verified, r.output);
      assert.equal(r.single(leaf.leaf)?.status, 'good', r.output);
      const nextUpdate = new Date(Date.parse(/Next Update: (.*)$/m.exec(r.output)?.[1] ?? ''));
      const thisUpdate = new Date(Date.parse(/This Update: (.*)$/m.exec(r.output)?.[1] ?? ''));
      const h = res.headers;
      assert.match(h['cache-control'] ?? '', /^max-age=\d+, public, no-transform, must-revalidate$/);
      // ocsp.httpMaxAge defaults to 0s: a cache in between revalidates every time (ocsp-requests.test.ts).
      assert.equal(maxAge(h['cache-control']), 0);
      assert.ok(Date.parse(h.expires ?? '') <= Date.now(), 'Expires says the same as max-age=0');
      assert.equal(nextUpdate.getTime() - thisUpdate.getTime(), 4 * 3_600_000, 'ocsp.validity defaults to 4h');
      assert.equal(Date.parse(h['last-modified'] ?? ''), thisUpdate.getTime(), 'Last-Modified is This Update');
      assert.match(h.etag ?? '', /^"[^"]+"$/);
      const again = await curl(['-g', '-H', `If-None-Match: ${h.etag}`, `${srv().statusUrl}/ocsp/${path}`]);
      assert.equal(again.status, 304);
      assert.equal(again.body.length, 0);
    }
  });

  let crlBefore: CrlInfo | undefined;

  it('GET /crl: DER that openssl verifies against the chain, cache headers, 304; /crl.pem is PEM; /root.crl verifies against the root', async () => {
    const res = await curlWithHeaders([`${srv().statusUrl}/crl`]);
    assert.equal(res.status, 200);
    assert.equal(res.contentType, 'application/pkix-crl');
    const v = await crlVerifies(res.body, ca().chain);
    assert.ok(v.ok, v.output);
    crlBefore = await crlInfo(res.body);
    const n = maxAge(res.headers['cache-control']);
    assert.ok(
      n !== null && n > 0 && n <= secondsUntil(crlBefore.nextUpdate) + 1,
      `Cache-Control ${res.headers['cache-control']} within Next Update`,
    );
    assert.ok(res.headers.etag && res.headers['last-modified'], 'ETag and Last-Modified');
    assert.equal((await curl(['-H', `If-None-Match: ${res.headers.etag}`, `${srv().statusUrl}/crl`])).status, 304);
    const pem = await curl([`${srv().statusUrl}/crl.pem`]);
    assert.equal(pem.status, 200);
    assert.match(pem.text, /^-----BEGIN X509 CRL-----\n/);
    assert.equal((await crlInfo(pem.text)).number, crlBefore.number);
    writeFileSync(f('crl.pem'), pem.text);
    const root = await curl([`${srv().statusUrl}/root.crl`]);
    assert.equal(root.status, 200);
    assert.equal(root.contentType, 'application/pkix-crl');
    const rv = await crlVerifies(root.body, ca().roots);
    assert.ok(rv.ok, rv.output);
    writeFileSync(f('root.crl.pem'), await openssl(['crl', '-inform', 'DER', '-outform', 'PEM'], root.body));
  });

  it('openssl verify -crl_check_all accepts a good leaf with both CRLs, and fails without the root CRL', async () => {
    const ok = await verifyWithCrls(L.c.leaf, [f('crl.pem'), f('root.crl.pem')]);
    assert.match(ok.stdout, /: OK$/m, ok.stderr);
    const noRoot = await verifyWithCrls(L.c.leaf, [f('crl.pem')]);
    assert.notEqual(noRoot.code, 0);
    assert.match(noRoot.stdout + noRoot.stderr, /unable to get certificate CRL/);
  });

  let revokedAt = '';

  it('a leaf revokes itself over mutual TLS (keyCompromise): OCSP says revoked at once, in every form', async () => {
    const res = await revoke({ serial: L.a.serial, reason: 'keyCompromise' }, L.a);
    assert.equal(res.status, 200, res.text);
    const body = res.json<{ serial: string; revokedAt: string; reason: string; alreadyRevoked: boolean }>();
    assert.deepEqual(
      { ...body, revokedAt: undefined },
      {
        serial: L.a.serial,
        revokedAt: undefined,
        reason: 'keyCompromise',
        alreadyRevoked: false,
        alsoRevoked: [],
        keyBlocked: true,
      },
    );
    revokedAt = body.revokedAt;
    // No polling: the pre-signed (no nonce) response cached above must already be replaced.
    for (const [extra, pre] of [
      [[], []],
      [['-no_nonce'], []],
      [['-no_nonce'], ['-sha256']],
    ] as const) {
      const s = await leafStatus(L.a, [...extra], [...pre]);
      assert.equal(s.status, 'revoked', s.r.output);
      assert.equal(s.reason, 'keyCompromise');
      assert.equal(s.revocationTime?.getTime(), Date.parse(revokedAt), s.r.output);
    }
  });

  it('within seconds the CRL lists it (Key Compromise) under a higher CRL number, and openssl verify rejects it', async () => {
    const { res, info } = await crlListing(L.a.serial);
    assert.equal(info.entries.get(L.a.serial)?.reason, 'Key Compromise');
    assert.equal(info.entries.get(L.a.serial)?.revokedAt.getTime(), Date.parse(revokedAt));
    assert.ok(crlBefore && info.number > crlBefore.number, `CRL number ${info.number} > ${crlBefore?.number}`);
    assert.ok((await crlVerifies(res.body, ca().chain)).ok);
    writeFileSync(f('crl.pem'), await openssl(['crl', '-inform', 'DER', '-outform', 'PEM'], res.body));
    const refused = await verifyWithCrls(L.a.leaf, [f('crl.pem'), f('root.crl.pem')]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stdout + refused.stderr, /certificate revoked/);
    assert.match((await verifyWithCrls(L.c.leaf, [f('crl.pem'), f('root.crl.pem')])).stdout, /: OK$/m);
  });

  it('revoking again keeps the first time and reason: 200 alreadyRevoked', async () => {
    const res = await revoke({ serial: L.a.serial, reason: 'superseded' }, L.a);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json(), {
      serial: L.a.serial,
      revokedAt,
      reason: 'keyCompromise',
      alreadyRevoked: true,
      alsoRevoked: [],
      keyBlocked: false,
    });
    assert.equal((await leafStatus(L.a)).reason, 'keyCompromise');
  });

  it('refusals: unknown serial 404, removeFromCRL 400, no credential 401, another certificate 403', async () => {
    assertProblem(
      await revoke({ serial: 'abcdef0123456789', reason: 'keyCompromise' }, L.d),
      404,
      'certificateNotFound',
    );
    assertProblem(await revoke({ serial: L.d.serial, reason: 'removeFromCRL' }, L.d), 400, 'badRevocationReason');
    assertProblem(await revoke({ serial: L.c.serial, reason: 'keyCompromise' }), 401, 'clientCertificateRequired');
    assertProblem(await revoke({ serial: L.c.serial, reason: 'keyCompromise' }, L.d), 403, 'notAuthorized');
    assertProblem(
      await revoke({ serial: L.c.serial, token: await revokeToken(L.c.serial, 'other', f('other.jwk')) }),
      403,
      'notAuthorized',
    );
    for (const leaf of [L.c, L.d]) assert.equal((await leafStatus(leaf)).status, 'good', 'nothing was revoked');
  });

  it('a token from the issuing provisioner with sub = serial revokes; the same token again is 401 tokenReplayed', async () => {
    const token = await revokeToken(L.b.serial, 'admin', ca().adminKey);
    const res = await revoke({ serial: L.b.serial, reason: 'cessationOfOperation', token });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().alreadyRevoked, false);
    const s = await leafStatus(L.b);
    assert.equal(s.status, 'revoked');
    assert.equal(s.reason, 'cessationOfOperation');
    assertProblem(await revoke({ serial: L.b.serial, reason: 'cessationOfOperation', token }), 401, 'tokenReplayed');
  });

  it('a revoked certificate can no longer renew: 403 certificateRevoked', async () => {
    const res = await curl([
      '--cacert',
      ca().roots,
      '--cert',
      L.a.cert,
      '--key',
      L.a.key,
      '-X',
      'POST',
      `${srv().publicUrl}/api/v1/renew`,
    ]);
    assertProblem(res, 403, 'certificateRevoked');
  });

  it('bad OCSP input is answered cleanly, and the responder keeps serving', async () => {
    const post = (body: Buffer, type = 'application/ocsp-request') =>
      request(`${srv().statusUrl}/ocsp`, { method: 'POST', headers: { 'content-type': type }, body });
    const respText = async (body: Buffer) => {
      writeFileSync(f('bad-resp.der'), body);
      const r = await opensslResult(['ocsp', '-respin', f('bad-resp.der'), '-resp_text', '-noverify']);
      return parseOcspOutput(r.stdout + r.stderr);
    };
    await openssl(['ocsp', '-issuer', ca().intermediates, '-cert', L.c.leaf, '-reqout', f('req.der'), '-no_nonce']);
    const req = readFileSync(f('req.der'));
    const truncated = await post(req.subarray(0, req.length - 7));
    assert.equal(truncated.status, 200);
    assert.equal(truncated.contentType, 'application/ocsp-response');
    assert.equal((await respText(truncated.body)).responderError, 'malformedrequest (1)');

    // Up to 10 CertIDs are answered (test/ocsp-requests.test.ts); more is malformed.
    for (const count of [11, 1000]) {
      const serials = Array.from({ length: count }, (_, i) => ['-serial', `0x${(i + 1).toString(16)}`]).flat();
      await openssl(['ocsp', '-issuer', ca().intermediates, ...serials, '-reqout', f('many.der'), '-no_nonce']);
      const res = await post(readFileSync(f('many.der')));
      if (res.status === 413) assertProblem(res, 413, 'bodyTooLarge');
      else assert.equal((await respText(res.body)).responderError, 'malformedrequest (1)', `${count} CertIDs`);
    }

    // 10 MB declared (or chunked), 256 KB sent: an answer now proves the rest was not awaited.
    for (const declaredBytes of [10 * 1024 * 1024, undefined]) {
      const res = await postPartial(`${srv().statusUrl}/ocsp`, {
        contentType: 'application/ocsp-request',
        sendBytes: 256 * 1024,
        timeoutMs: 5_000,
        ...(declaredBytes ? { declaredBytes } : {}),
      });
      assert.equal(res.status, 413, res.text);
      assert.match(res.contentType, /^application\/problem\+json/);
      assert.equal((JSON.parse(res.text) as { type: string }).type, 'urn:shortleaf:problem:bodyTooLarge');
    }

    // And the whole 10 MB, as curl sends it: refused promptly.
    writeFileSync(f('10mb.bin'), Buffer.alloc(10 * 1024 * 1024, 0x30));
    const t0 = Date.now();
    const big = await curl([
      '-H',
      'content-type: application/ocsp-request',
      '--data-binary',
      `@${f('10mb.bin')}`,
      `${srv().statusUrl}/ocsp`,
    ]);
    assertProblem(big, 413, 'bodyTooLarge');
    assert.ok(Date.now() - t0 < 5_000, `answered in ${Date.now() - t0} ms`);

    assertProblem(await post(req, 'application/octet-stream'), 415, 'unsupportedMediaType');
    const notB64 = await curl(['-g', `${srv().statusUrl}/ocsp/not*base64!`]);
    assert.equal(notB64.status, 200);
    assert.equal((await respText(notB64.body)).responderError, 'malformedrequest (1)');

    assert.equal((await leafStatus(L.c)).status, 'good', 'still answering');
    assert.equal(srv().exited(), false);
  });

  it('after a restart on the same data the CRL number keeps growing and OCSP still says revoked', async () => {
    const last = (await fetchCrl()).info.number;
    // A clean exit even after the 10 MB POST above left a refused body unread.
    assert.deepEqual(await srv().stop(), { code: 0, signal: null });
    server = await startServer({ data: ca().data });
    servers.push(server);
    const a = await leafStatus(L.a);
    assert.equal(a.status, 'revoked');
    assert.equal(a.reason, 'keyCompromise');
    assert.ok((await fetchCrl()).info.number >= last, 'never a lower number');
    const res = await revoke({ serial: L.e.serial, reason: 'affiliationChanged' }, L.e);
    assert.equal(res.status, 200, res.text);
    const { info } = await crlListing(L.e.serial);
    assert.ok(info.number > last, `CRL number ${info.number} after the restart > ${last} before it`);
    assert.ok(info.entries.has(L.a.serial) && info.entries.has(L.b.serial), 'earlier revocations are still listed');
  });

  it('no server logged an internal error', () => {
    for (const s of servers)
      assert.deepEqual(
        s.logs().filter((l) => l.level === 'error'),
        [],
      );
  });
});
