// Every kind of bad input against a running server: each gets its own 4xx problem document with
// a stable type and a readable detail, and leaves the database exactly as it was.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { tableCounts } from './helpers/data.js';
import { assertProblem, curl, request, type HttpResult, type RequestOptions } from './helpers/http.js';
import { openssl } from './helpers/openssl.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { jose, mintToken, signAudience } from './helpers/workspace.js';

describe('bad input', () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  const data = f('data');
  let server: RunningServer | undefined;
  let rootPem = '';
  let svcJwk: Record<string, string> = {};
  const tokens: string[] = [];
  const srv = () => {
    assert.ok(server, 'the server did not start');
    return server;
  };

  before(async () => {
    await shortleafOk(['init', '--data', data]);
    await shortleafOk([
      'provisioner',
      'add',
      'svc',
      '--data',
      data,
      '--key-out',
      f('svc.jwk'),
      '--allow-dns',
      '*.svc.internal',
    ]);
    const { provisioner: _, ...jwk } = JSON.parse(readFileSync(f('svc.jwk'), 'utf8')) as Record<string, string>;
    svcJwk = jwk;
    rootPem = readFileSync(join(data, 'offline-root', 'root.crt'), 'utf8');
    server = await startServer({ data });
  });

  after(async () => {
    try {
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  /** A one-time token from the `svc` provisioner, as `shortleaf token` makes it. */
  async function token(
    subject: string,
    extra: { audience?: string; privateJwk?: Record<string, string> } = {},
  ): Promise<string> {
    const t = await mintToken({
      provisioner: 'svc',
      privateJwk: extra.privateJwk ?? svcJwk,
      caUrl: srv().publicUrl,
      subject,
      sans: [subject],
      ...(extra.audience ? { audience: extra.audience } : {}),
    });
    tokens.push(t);
    return t;
  }

  let csrCount = 0;
  /** A CSR made by openssl for `name`: PEM text, or DER with `der: true`. */
  async function csr(name: string, opts: { newkey?: string[]; der?: boolean } = {}): Promise<string> {
    const out = f(`csr-${++csrCount}`);
    await openssl([
      'req',
      '-new',
      ...(opts.newkey ?? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']),
      '-nodes',
      '-keyout',
      `${out}.key`,
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=DNS:${name}`,
      '-outform',
      opts.der ? 'DER' : 'PEM',
      '-out',
      out,
    ]);
    return opts.der ? readFileSync(out).toString('base64') : readFileSync(out, 'utf8');
  }
  const pem = (label: string, b64: string) =>
    `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;

  const post = (path: string, opts: RequestOptions = {}) =>
    request(`${srv().api}${path}`, { method: 'POST', ca: rootPem, ...opts });
  const sign = (body: unknown, opts: RequestOptions = {}) =>
    post('/api/v1/sign', {
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      ...opts,
    });

  /** Runs a request and asserts it changed no row of any table. */
  async function unchanged(send: () => Promise<HttpResult>): Promise<HttpResult> {
    const before = await tableCounts(data);
    const res = await send();
    assert.deepEqual(await tableCounts(data), before, `the database changed after HTTP ${res.status}: ${res.text}`);
    return res;
  }

  it('garbage instead of a PEM CSR: 400 badPem', async () => {
    const t = await token('a.svc.internal');
    for (const garbage of [
      'hello, I am not a CSR',
      '-----BEGIN CERTIFICATE REQUEST-----\n!!!! not base64 ****\n-----END CERTIFICATE REQUEST-----\n',
    ]) {
      const p = assertProblem(await unchanged(() => sign({ csr: garbage, token: t })), 400, 'badPem');
      assert.match(p.detail, /PEM/);
    }
  });

  it('a refused request does not spend its token', async () => {
    const t = await token('spare.svc.internal');
    assertProblem(await unchanged(() => sign({ csr: 'garbage', token: t })), 400, 'badPem');
    const ok = await sign({ csr: await csr('spare.svc.internal'), token: t });
    assert.equal(ok.status, 201, ok.text);
  });

  it('a CSR whose signature does not verify: 400 badCsrSignature', async () => {
    const der = Buffer.from(await csr('b.svc.internal', { der: true }), 'base64');
    der[der.length - 1]! ^= 0x01; // the last byte lies inside the signature's s value
    const t = await token('b.svc.internal');
    const p = assertProblem(
      await unchanged(() => sign({ csr: pem('CERTIFICATE REQUEST', der.toString('base64')), token: t })),
      400,
      'badCsrSignature',
    );
    assert.match(p.detail, /signature/);
  });

  it('an RSA 1024 CSR: 400 weakKey', async () => {
    const t = await token('c.svc.internal');
    const p = assertProblem(
      await unchanged(async () =>
        sign({ csr: await csr('c.svc.internal', { newkey: ['-newkey', 'rsa:1024'] }), token: t }),
      ),
      400,
      'weakKey',
    );
    assert.match(p.detail, /1024/);
  });

  it('a name outside the provisioner policy: 403 nameNotAllowed', async () => {
    const t = await token('db.other.internal');
    const body = { csr: await csr('db.other.internal'), token: t };
    const p = assertProblem(await unchanged(() => sign(body)), 403, 'nameNotAllowed');
    assert.match(p.detail, /db\.other\.internal/);
  });

  it('an expired token: 401 tokenExpired', async () => {
    const now = Math.floor(Date.now() / 1000);
    const key = await jose.importJWK(svcJwk, 'ES256');
    const t = await new jose.SignJWT({ sans: ['d.svc.internal'] })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: svcJwk.kid! })
      .setIssuer('svc')
      .setAudience(signAudience(srv().publicUrl))
      .setSubject('d.svc.internal')
      .setIssuedAt(now - 900)
      .setNotBefore(now - 900)
      .setExpirationTime(now - 600)
      .setJti(randomUUID())
      .sign(key);
    tokens.push(t);
    const body = { csr: await csr('d.svc.internal'), token: t };
    const p = assertProblem(await unchanged(() => sign(body)), 401, 'tokenExpired');
    assert.match(p.detail, /expired/);
  });

  let issuedPem = '';
  it('a replayed token: 401 tokenReplayed, and the database grew only once', async () => {
    const t = await token('e.svc.internal');
    const before = await tableCounts(data);
    const first = await sign({ csr: await csr('e.svc.internal'), token: t });
    assert.equal(first.status, 201, first.text);
    issuedPem = first.json<{ certificate: string }>().certificate;
    const afterFirst = await tableCounts(data);
    assert.equal(afterFirst.certificates, before.certificates! + 1);
    assert.equal(afterFirst.token_uses, before.token_uses! + 1);
    assert.equal(afterFirst.audit_log, before.audit_log! + 1);
    const body = { csr: await csr('e.svc.internal'), token: t };
    const p = assertProblem(await unchanged(() => sign(body)), 401, 'tokenReplayed');
    assert.match(p.detail, /already been used/);
  });

  it('a token for another audience: 401 tokenAudience', async () => {
    const t = await token('f.svc.internal', { audience: 'https://some-other-ca.example:9443/api/v1/sign' });
    const body = { csr: await csr('f.svc.internal'), token: t };
    assertProblem(await unchanged(() => sign(body)), 401, 'tokenAudience');
  });

  it("a token signed by another key under the provisioner's name: 401 tokenSignature", async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = { ...(privateKey.export({ format: 'jwk' }) as Record<string, string>), kid: svcJwk.kid! };
    const t = await token('g.svc.internal', { privateJwk: forged });
    const body = { csr: await csr('g.svc.internal'), token: t };
    assertProblem(await unchanged(() => sign(body)), 401, 'tokenSignature');
  });

  it('renew without a client certificate: 401 clientCertificateRequired', async () => {
    assertProblem(await unchanged(() => post('/api/v1/renew')), 401, 'clientCertificateRequired');
  });

  /** A client certificate from a CA of our own making, with this serial (hex) and name. */
  async function foreignClientCertificate(serialHex: string, name: string): Promise<{ cert: string; key: string }> {
    if (!existsSync(f('foreign-ca.crt'))) {
      await openssl([
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        f('foreign-ca.key'),
        '-out',
        f('foreign-ca.crt'),
        '-subj',
        '/CN=Foreign CA',
        '-days',
        '2',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
      ]);
    }
    writeFileSync(
      f('client.cnf'),
      `[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth,serverAuth\nsubjectAltName=DNS:${name}\n`,
    );
    await openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      f(`fc-${serialHex}.key`),
      '-subj',
      `/CN=${name}`,
      '-out',
      f(`fc-${serialHex}.csr`),
    ]);
    await openssl([
      'x509',
      '-req',
      '-in',
      f(`fc-${serialHex}.csr`),
      '-CA',
      f('foreign-ca.crt'),
      '-CAkey',
      f('foreign-ca.key'),
      '-set_serial',
      `0x${serialHex}`,
      '-days',
      '1',
      '-extfile',
      f('client.cnf'),
      '-extensions',
      'v3',
      '-out',
      f(`fc-${serialHex}.crt`),
    ]);
    return {
      cert: readFileSync(f(`fc-${serialHex}.crt`), 'utf8'),
      key: readFileSync(f(`fc-${serialHex}.key`), 'utf8'),
    };
  }

  it('renew with a client certificate from a foreign CA: 403 certificateUnknown', async () => {
    const client = await foreignClientCertificate('7a5e1f00c0ffee', 'h.svc.internal');
    assertProblem(await unchanged(() => post('/api/v1/renew', client)), 403, 'certificateUnknown');
  });

  it('renew with a foreign certificate copying the serial and names of one we issued: 403 certificateUnknown', async () => {
    assert.ok(issuedPem, 'the replay test issued a certificate');
    const serial = new X509Certificate(issuedPem).serialNumber.toLowerCase();
    const client = await foreignClientCertificate(serial, 'e.svc.internal');
    assert.equal(new X509Certificate(client.cert).serialNumber.toLowerCase(), serial);
    assertProblem(await unchanged(() => post('/api/v1/renew', client)), 403, 'certificateUnknown');
  });

  it('a 200 KB body: 413 bodyTooLarge, whether its length is declared or streamed', async () => {
    // curl, which reads a response that arrives while it is still sending; node's own client
    // reports such early answers to a streamed body as "socket hang up".
    writeFileSync(f('huge.json'), JSON.stringify({ csr: 'A'.repeat(200 * 1024), token: 'x' }));
    for (const framing of [[], ['-H', 'Transfer-Encoding: chunked']]) {
      const args = [
        '--cacert',
        join(data, 'offline-root', 'root.crt'),
        '-H',
        'Expect:',
        '-H',
        'content-type: application/json',
        ...framing,
        '--data-binary',
        `@${f('huge.json')}`,
        `${srv().api}/api/v1/sign`,
      ];
      const p = assertProblem(await unchanged(() => curl(args)), 413, 'bodyTooLarge');
      assert.match(p.detail, /65536 bytes \(limits\.maxBodyBytes\)/);
    }
  });

  it('a body that is not application/json: 415 unsupportedMediaType', async () => {
    const t = await token('i.svc.internal');
    const body = JSON.stringify({ csr: await csr('i.svc.internal'), token: t });
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      assertProblem(
        await unchanged(() => post('/api/v1/sign', { headers: { 'content-type': type }, body })),
        415,
        'unsupportedMediaType',
      );
    }
  });

  it('an unknown JSON field: 400 badRequest naming the field', async () => {
    const t = await token('j.svc.internal');
    const body = { csr: await csr('j.svc.internal'), token: t, lifetime: '1h' };
    const p = assertProblem(await unchanged(() => sign(body)), 400, 'badRequest');
    assert.match(p.detail, /"lifetime"/);
  });

  it('malformed JSON, a non-object body and a non-string CSR: 400 with their own types', async () => {
    assertProblem(await unchanged(() => sign('{"csr": ')), 400, 'badJson');
    assertProblem(await unchanged(() => sign('["csr"]')), 400, 'badRequest');
    const t = await token('k.svc.internal');
    assertProblem(await unchanged(() => sign({ csr: 42, token: t })), 400, 'badCsr');
    const k = await csr('k.svc.internal');
    assertProblem(await unchanged(() => sign({ csr: k, token: 'not.a.jwt' })), 400, 'tokenMalformed');
  });

  it('an unknown path and a wrong method: 404 notFound, 405 methodNotAllowed', async () => {
    assertProblem(await unchanged(() => request(`${srv().api}/api/v1/nope`, { ca: rootPem })), 404, 'notFound');
    assertProblem(await unchanged(() => request(`${srv().api}/api/v1/sign`, { ca: rootPem })), 405, 'methodNotAllowed');
  });

  it('after all of that the server still answers /health, logged no internal error and no token', async () => {
    const res = await request(`${srv().api}/health`, { ca: rootPem });
    assert.equal(res.status, 200);
    assert.equal(res.json().status, 'ok');
    assert.equal(srv().exited(), false);
    assert.deepEqual(
      srv()
        .logs()
        .filter((l) => l.level === 'error'),
      [],
      'no 500s',
    );
    assert.ok(tokens.length >= 10);
    for (const t of tokens) assert.ok(!srv().stderr().includes(t.split('.')[2]!), 'a token appears in the log');
  });
});
