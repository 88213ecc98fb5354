// OCSP against a real server and real OpenSSL: several CertIDs in one request (RFC 6960 §4.1.1),
// and what an HTTP cache between a relying party and the responder is told (RFC 5019 §6.2).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa, type IssuedLeaf } from './helpers/dev-ca.js';
import { curl, curlWithHeaders } from './helpers/http.js';
import { openssl, opensslResult } from './helpers/openssl.js';
import { maxAge, ocsp } from './helpers/revocation.js';
import { pollUntil } from './helpers/server.js';

const HOUR_MS = 3_600_000;

describe('OCSP: several CertIDs per request, and the HTTP cache lifetime', () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  let devCa: DevCa | undefined;
  const L: Record<'good' | 'gone' | 'later', IssuedLeaf> = {} as never;
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };
  const url = () => `${ca().server.statusUrl}/ocsp`;
  /** A response's text as `openssl ocsp -respin -resp_text` prints it (signature not checked here). */
  const responseText = async (body: Uint8Array): Promise<string> => {
    writeFileSync(f('resp.der'), body);
    const r = await opensslResult(['ocsp', '-respin', f('resp.der'), '-resp_text', '-noverify']);
    return r.stdout + r.stderr;
  };

  before(async () => {
    devCa = await startDevCa(dir.path);
    for (const name of ['good', 'gone', 'later'] as const) L[name] = await devCa.issue(`ocsp-${name}.internal`, name);
    await shortleafOk(['revoke', L.gone.serial, '--reason', 'keyCompromise', '--data', devCa.data]);
  });
  after(async () => {
    try {
      await devCa?.server.stop();
    } finally {
      dir.remove();
    }
  });

  it('openssl ocsp -serial A -serial B -serial C: one verifying response answering each, nonce echoed', async () => {
    const [a, b, c] = [`0x${L.good.serial}`, `0x${L.gone.serial}`, '0x7e57'];
    const r = await pollUntil(
      'the revocation to reach OCSP',
      async () => {
        const res = await ocsp([
          '-issuer',
          ca().intermediates,
          '-serial',
          a,
          '-serial',
          b,
          '-serial',
          c,
          '-url',
          url(),
          '-CAfile',
          ca().roots,
          '-resp_text',
        ]);
        return res.single(b)?.status === 'revoked' ? res : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    assert.ok(r.verified, r.output);
    assert.equal(r.nonceWarning, false, r.output);
    assert.equal(r.single(a)?.status, 'good', r.output);
    assert.equal(r.single(b)?.reason, 'keyCompromise', r.output);
    assert.equal(r.single(c)?.status, 'unknown', r.output);
    assert.equal(r.output.match(/Cert Status: /g)?.length, 3, 'one SingleResponse per CertID');
  });

  it('more than ten CertIDs is malformedRequest; CertIDs of two issuers in one request are unauthorized', async () => {
    const eleven = Array.from({ length: 11 }, (_, i) => ['-serial', `0x${(0x100 + i).toString(16)}`]).flat();
    const tooMany = await ocsp(['-issuer', ca().intermediates, ...eleven, '-url', url(), '-CAfile', ca().roots]);
    assert.equal(tooMany.responderError, 'malformedrequest (1)', tooMany.output);
    const ten = await ocsp(['-issuer', ca().intermediates, ...eleven.slice(2), '-url', url(), '-CAfile', ca().roots]);
    assert.ok(ten.verified, ten.output);
    // The intermediate (answered by the root's delegated responder) and a leaf (by the intermediate's).
    const mixed = await ocsp([
      '-issuer',
      ca().roots,
      '-cert',
      ca().intermediates,
      '-issuer',
      ca().intermediates,
      '-cert',
      L.good.leaf,
      '-url',
      url(),
      '-CAfile',
      ca().roots,
    ]);
    assert.equal(mixed.responderError, 'unauthorized (6)', mixed.output);
  });

  it('GET answers are valid 4 h and no cache may serve one without asking again, so a revocation shows at once through a cache', async () => {
    await openssl([
      'ocsp',
      '-issuer',
      ca().intermediates,
      '-cert',
      L.later.leaf,
      '-reqout',
      f('later.der'),
      '-no_nonce',
    ]);
    const path = `${ca().server.statusUrl}/ocsp/${encodeURIComponent(readFileSync(f('later.der')).toString('base64'))}`;
    const first = await curlWithHeaders(['-g', path]);
    assert.equal(first.status, 200);
    assert.equal(maxAge(first.headers['cache-control']), 0, first.headers['cache-control']);
    assert.match(first.headers['cache-control'] ?? '', /must-revalidate/);
    assert.ok(
      Date.parse(first.headers.expires ?? '') <= Date.parse(first.headers.date ?? ''),
      'Expires is not after Date',
    );
    const text = await responseText(first.body);
    assert.match(text, /Cert Status: good/);
    const times = /This Update: (.*)\n\s+Next Update: (.*)/.exec(text);
    assert.ok(times, text);
    assert.equal(Date.parse(times[2]!) - Date.parse(times[1]!), 4 * HOUR_MS, 'ocsp.validity defaults to 4h');
    const etag = first.headers.etag!;
    assert.equal(
      (await curl(['-g', '-H', `If-None-Match: ${etag}`, path])).status,
      304,
      'revalidating costs a 304 while nothing changed',
    );

    await shortleafOk(['revoke', L.later.serial, '--reason', 'superseded', '--data', ca().data]);
    // What a cache does at max-age=0: ask again with the ETag it holds. It gets the new answer.
    const changed = await pollUntil(
      'the revalidation to return the revoked answer',
      async () => {
        const res = await curlWithHeaders(['-g', '-H', `If-None-Match: ${etag}`, path]);
        return res.status === 200 ? res : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    assert.notEqual(changed.headers.etag, etag);
    assert.match(await responseText(changed.body), /Cert Status: revoked/);
  });
});
