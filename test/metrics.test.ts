// GET /metrics against a running server: every counter moves by exactly what the test did through
// the front doors (REST sign, mTLS renew, revoke, OCSP, one ACME order and one failed validation),
// and the CRL gauges describe the CRL the status listener serves. Request ids reach the client and
// the log lines written while handling the request.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { Agent } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Client, axios as acmeAxios, crypto as acmeCrypto } from 'acme-client';
import { tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa, type IssuedLeaf } from './helpers/dev-ca.js';
import { curl, request } from './helpers/http.js';
import { crlInfo, ocsp } from './helpers/revocation.js';
import { pollUntil, startServer, type RunningServer } from './helpers/server.js';

/** One sample per series: `name{label="v",…}` (labels sorted) → value. */
type Samples = Map<string, number>;

/** Parses the Prometheus text exposition format (0.0.4): comments skipped, one sample a line. */
function parseMetrics(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map((l) => `${l[1]}="${l[2]}"`)
      .sort();
    samples.set(labels.length === 0 ? m[1]! : `${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return samples;
}

/** `name{a="1",b="2"}` with the labels sorted, as `parseMetrics` keys them. */
const series = (name: string, labels: Record<string, string> = {}) => {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort();
  return l.length === 0 ? name : `${name}{${l.join(',')}}`;
};

describe('GET /metrics', () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  let devCa: DevCa | undefined;
  let responder: Server | undefined;
  const tokens = new Map<string, string>();
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };
  const srv = () => ca().server;
  const scrape = async (): Promise<{ samples: Samples; contentType: string; status: number }> => {
    const res = await request(`${srv().statusUrl}/metrics`);
    assert.equal(res.status, 200, res.text.slice(0, 300));
    return { samples: parseMetrics(res.text), contentType: res.contentType, status: res.status };
  };
  const value = (s: Samples, name: string, labels: Record<string, string> = {}) => s.get(series(name, labels)) ?? 0;

  before(async () => {
    // An http-01 responder for the ACME order; the server finds the names through `hosts`.
    responder = createServer((req, res) => {
      const prefix = '/.well-known/acme-challenge/';
      const keyAuthorization =
        req.url?.startsWith(prefix) === true ? tokens.get(req.url.slice(prefix.length)) : undefined;
      if (keyAuthorization === undefined) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(keyAuthorization);
    });
    await new Promise<void>((resolve) => responder!.listen(0, '127.0.0.1', resolve));
    const httpPort = (responder.address() as { port: number }).port;
    writeFileSync(
      f('config.json'),
      JSON.stringify({
        acme: {
          validation: {
            httpPort,
            hosts: { 'acme-ok.test': '127.0.0.1', 'acme-fail.test': '127.0.0.1' },
            timeout: '5s',
          },
        },
      }),
    );
    devCa = await startDevCa(dir.path, { serve: { args: ['--config', f('config.json')] } });
  });

  after(async () => {
    try {
      await devCa?.server.stop();
      await new Promise((resolve) => responder?.close(resolve));
    } finally {
      dir.remove();
    }
  });

  it('counts issuance, renewal, revocation, OCSP and ACME by exactly what was done, and describes the CRL', async () => {
    const before = await scrape();
    assert.match(before.contentType, /^text\/plain; version=0\.0\.4; charset=utf-8$/);
    // Start-up issued the CA's own HTTPS certificate and its OCSP signer: front door "internal".
    assert.ok(
      value(before.samples, 'shortleaf_certificates_issued_total', {
        provisioner: 'shortleaf:server',
        front_door: 'internal',
        action: 'issue',
      }) >= 1,
      'the server certificate is counted',
    );
    assert.ok(before.samples.has('process_cpu_user_seconds_total'), 'Node process metrics are included');
    assert.ok(before.samples.has('nodejs_eventloop_lag_seconds'), 'Node process metrics are included');

    // REST: two signs with a token, one renewal over mutual TLS, one revocation (keyCompromise).
    const good: IssuedLeaf = await ca().issue('metrics-good.internal', 'good');
    const bad: IssuedLeaf = await ca().issue('metrics-bad.internal', 'bad');
    const renewed = await curl([
      '--cacert',
      ca().roots,
      '--cert',
      good.cert,
      '--key',
      good.key,
      '-X',
      'POST',
      `${srv().publicUrl}/api/v1/renew`,
    ]);
    assert.equal(renewed.status, 201, renewed.text);
    const revoked = await request(`${srv().publicUrl}/api/v1/revoke`, {
      method: 'POST',
      ca: readFileSync(ca().roots, 'utf8'),
      cert: readFileSync(bad.cert, 'utf8'),
      key: readFileSync(bad.key, 'utf8'),
      headers: { 'content-type': 'application/json', 'x-request-id': 'metrics-test.revoke-1' },
      body: JSON.stringify({ serial: bad.serial, reason: 'keyCompromise' }),
    });
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.headers?.['x-request-id'], 'metrics-test.revoke-1', 'a sane incoming request id is echoed');
    const revokedLine = await pollUntil(
      'the certificate_revoked log line',
      async () =>
        srv()
          .logs()
          .find((l) => l.event === 'certificate_revoked' && l.serial === bad.serial),
      { timeoutMs: 5_000, intervalMs: 50 },
    );
    assert.equal(
      revokedLine.requestId,
      'metrics-test.revoke-1',
      `the revocation's log line carries the request id: ${JSON.stringify(revokedLine)}`,
    );

    // OCSP (openssl POSTs): with a nonce always signed (miss); without one, signed once then pre-signed (hit).
    const ask = async (target: string[], noNonce: boolean) => {
      const r = await ocsp([
        '-issuer',
        ca().intermediates,
        ...target,
        '-url',
        `${srv().statusUrl}/ocsp`,
        '-CAfile',
        ca().roots,
        ...(noNonce ? ['-no_nonce'] : []),
      ]);
      assert.ok(r.verified, r.output);
      return r;
    };
    assert.equal((await ask(['-cert', good.leaf], false)).single(good.leaf)?.status, 'good');
    assert.equal((await ask(['-cert', good.leaf], true)).single(good.leaf)?.status, 'good');
    assert.equal((await ask(['-cert', good.leaf], true)).single(good.leaf)?.status, 'good');
    assert.equal((await ask(['-cert', bad.leaf], true)).single(bad.leaf)?.status, 'revoked');
    assert.equal((await ask(['-cert', bad.leaf], true)).single(bad.leaf)?.status, 'revoked');
    assert.equal((await ask(['-serial', '0x7e57ab1e'], true)).single('0x7e57ab1e')?.status, 'unknown');
    assert.equal((await ask(['-serial', '0x7e57ab1e'], true)).single('0x7e57ab1e')?.status, 'unknown');
    const garbage = await request(`${srv().statusUrl}/ocsp/AAAA`);
    assert.equal(garbage.status, 200, 'a malformed GET gets an OCSP malformedRequest response');

    // ACME: one order finalized (http-01), and one validation that fails (the responder answers 404: incorrectResponse).
    acmeAxios.defaults.httpsAgent = new Agent({ ca: readFileSync(ca().roots, 'utf8') });
    const client = new Client({
      directoryUrl: `${srv().publicUrl}/acme/acme/directory`,
      accountKey: await acmeCrypto.createPrivateEcdsaKey(),
      backoffMin: 50,
      backoffMax: 500,
      backoffAttempts: 20,
    });
    const [, csr] = await acmeCrypto.createCsr({ altNames: ['acme-ok.test'] });
    const pem = await client.auto({
      csr,
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) =>
        void tokens.set(challenge.token, keyAuthorization),
      challengeRemoveFn: async (_authz, challenge) => void tokens.delete(challenge.token),
    });
    assert.match(pem, /BEGIN CERTIFICATE/);
    const failing = await client.createOrder({ identifiers: [{ type: 'dns', value: 'acme-fail.test' }] });
    const [authz] = await client.getAuthorizations(failing);
    const http01 = authz!.challenges.find((c) => c.type === 'http-01')!;
    await client.completeChallenge(http01);
    await assert.rejects(client.waitForValidStatus(http01), 'the challenge fails: nothing answers it');

    // The CRL lists the revocation within seconds.
    const crl = await pollUntil(
      'the CRL to list the revoked serial',
      async () => {
        const res = await curl([`${srv().statusUrl}/crl`]);
        const info = await crlInfo(res.body);
        return info.entries.has(bad.serial) ? { res, info } : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );

    const after = (await scrape()).samples;
    const delta = (name: string, labels: Record<string, string> = {}) =>
      value(after, name, labels) - value(before.samples, name, labels);
    const report = [...after]
      .filter(([k]) => k.startsWith('shortleaf_'))
      .map(([k, v]) => `${k} ${v}`)
      .join('\n');

    assert.equal(
      delta('shortleaf_certificates_issued_total', { provisioner: 'admin', front_door: 'rest', action: 'issue' }),
      2,
      report,
    );
    assert.equal(
      delta('shortleaf_certificates_issued_total', { provisioner: 'admin', front_door: 'rest', action: 'renew' }),
      1,
      report,
    );
    assert.equal(
      delta('shortleaf_certificates_issued_total', { provisioner: 'acme', front_door: 'acme', action: 'issue' }),
      1,
      report,
    );
    assert.equal(delta('shortleaf_issuance_duration_seconds_count', { front_door: 'rest' }), 3, report);
    assert.equal(delta('shortleaf_issuance_duration_seconds_count', { front_door: 'acme' }), 1, report);
    assert.ok(delta('shortleaf_issuance_duration_seconds_sum', { front_door: 'rest' }) > 0, report);
    assert.equal(
      value(after, 'shortleaf_issuance_duration_seconds_bucket', { front_door: 'rest', le: '+Inf' }),
      value(after, 'shortleaf_issuance_duration_seconds_count', { front_door: 'rest' }),
      report,
    );

    assert.equal(delta('shortleaf_revocations_total', { reason: 'keyCompromise' }), 1, report);
    assert.equal(
      value(after, 'shortleaf_revocations_total', { reason: 'superseded' }),
      0,
      'every reason is present from the start, at 0',
    );

    assert.equal(delta('shortleaf_ocsp_responses_total', { status: 'good', cache: 'miss' }), 2, report);
    assert.equal(delta('shortleaf_ocsp_responses_total', { status: 'good', cache: 'hit' }), 1, report);
    assert.equal(delta('shortleaf_ocsp_responses_total', { status: 'revoked', cache: 'miss' }), 1, report);
    assert.equal(delta('shortleaf_ocsp_responses_total', { status: 'revoked', cache: 'hit' }), 1, report);
    assert.equal(delta('shortleaf_ocsp_responses_total', { status: 'unknown', cache: 'miss' }), 2, report);
    assert.equal(
      delta('shortleaf_ocsp_responses_total', { status: 'unknown', cache: 'hit' }),
      0,
      'unknown serials are never cached',
    );
    assert.equal(delta('shortleaf_ocsp_responses_total', { status: 'malformedRequest', cache: 'miss' }), 1, report);
    assert.ok(value(after, 'shortleaf_ocsp_cache_entries') >= 2, report);

    assert.equal(delta('shortleaf_acme_orders_total', { state: 'pending' }), 2, report);
    assert.equal(delta('shortleaf_acme_orders_total', { state: 'processing' }), 1, report);
    assert.equal(delta('shortleaf_acme_orders_total', { state: 'valid' }), 1, report);
    assert.equal(
      delta('shortleaf_acme_validation_failures_total', { challenge: 'http-01', problem: 'incorrectResponse' }),
      1,
      report,
    );

    // The CRL gauges describe the CRL being served.
    assert.equal(value(after, 'shortleaf_crl_entries'), crl.info.entries.size, report);
    assert.equal(value(after, 'shortleaf_crl_bytes'), crl.res.body.length, report);
    assert.equal(BigInt(value(after, 'shortleaf_crl_number')), crl.info.number, report);
    const age = value(after, 'shortleaf_crl_age_seconds');
    assert.ok(age >= 0 && age < 60, `a CRL built seconds ago is seconds old: ${age}`);
    const left = value(after, 'shortleaf_crl_next_update_seconds');
    assert.ok(
      Math.abs(left - (crl.info.nextUpdate.getTime() - Date.now()) / 1000) < 60,
      `seconds to nextUpdate: ${left}`,
    );
    assert.ok(delta('shortleaf_crl_published_total') >= 1, report);
  });

  it('gives every API and ACME request an id: a sane incoming one is kept, anything else replaced', async () => {
    const roots = readFileSync(ca().roots, 'utf8');
    const made = await request(`${srv().publicUrl}/health`, { ca: roots });
    assert.match(made.headers?.['x-request-id'] ?? '', /^[0-9a-f-]{36}$/, 'a fresh UUID when the client sends none');
    const insane = await request(`${srv().publicUrl}/health`, {
      ca: roots,
      headers: { 'x-request-id': 'a'.repeat(65) },
    });
    assert.match(insane.headers?.['x-request-id'] ?? '', /^[0-9a-f-]{36}$/, 'a 65-character id is replaced');
    const acme = await request(`${srv().publicUrl}/acme/acme/directory`, {
      ca: roots,
      headers: { 'x-request-id': 'trace_42' },
    });
    assert.equal(acme.headers?.['x-request-id'], 'trace_42');
    const line = await pollUntil(
      'the http_request log line',
      async () =>
        srv()
          .logs()
          .find((l) => l.event === 'http_request' && l.requestId === 'trace_42'),
      { timeoutMs: 5_000, intervalMs: 50 },
    );
    assert.equal(line.path, '/acme/acme/directory');
    assert.equal(line.status, 200);
    assert.equal(line.method, 'GET');
    const ocspAnswer = await request(`${srv().statusUrl}/ocsp/AAAA`);
    assert.equal(ocspAnswer.headers?.['x-request-id'], undefined, 'the OCSP hot path carries no request id');
  });

  it('with metrics.enabled false, /metrics is 404 and the server otherwise works', async () => {
    await srv().stop();
    writeFileSync(f('off.json'), JSON.stringify({ metrics: { enabled: false } }));
    const server: RunningServer = await startServer({ data: ca().data, args: ['--config', f('off.json')] });
    ca().server = server;
    const res = await request(`${server.statusUrl}/metrics`);
    assert.equal(res.status, 404, res.text);
    assert.match(res.contentType, /^application\/problem\+json/);
    assert.equal((await request(`${server.statusUrl}/health`)).status, 200);
  });
});
