// The operator's side of revocation: `shortleaf revoke` and `certs list` against a running server's
// data, and the offline root's CRL (the production ceremony with a root-delegated OCSP responder):
// signed offline, imported, served, and revoking the intermediate itself.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa, type IssuedLeaf } from './helpers/dev-ca.js';
import { curl } from './helpers/http.js';
import { extension, openssl, opensslResult, x509TextOfFile } from './helpers/openssl.js';
import { crlInfo, ocsp, serialOf } from './helpers/revocation.js';
import { pollUntil, startServer, type RunningServer } from './helpers/server.js';

interface Row {
  serial: string;
  status: string;
  notAfter: Date;
  provisioner: string;
  names: string;
}

/** The rows of `shortleaf certs list`, after its header line. */
function rows(stdout: string): Row[] {
  const [header, ...lines] = stdout.trim().split('\n');
  assert.equal(header, 'SERIAL\tSTATUS\tNOT AFTER\tPROVISIONER\tNAMES');
  return lines.map((l) => {
    const [serial = '', status = '', notAfter = '', provisioner = '', names = ''] = l.split('\t');
    return { serial, status, notAfter: new Date(notAfter), provisioner, names };
  });
}

describe('shortleaf revoke and certs list, while the server runs', () => {
  const dir = tempDir();
  let devCa: DevCa | undefined;
  const servers: RunningServer[] = [];
  const L: Record<'x' | 'y' | 'z' | 'w', IssuedLeaf> = {} as never;
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };

  before(async () => {
    devCa = await startDevCa(dir.path);
    servers.push(devCa.server);
    L.x = await devCa.issue('svc-x.internal', 'x');
    L.y = await devCa.issue('svc-y.internal', 'y');
    L.z = await devCa.issue('svc-z.internal', 'z', { extra: ['--not-after', '72h'] });
    L.w = await devCa.issue('svc-w.internal', 'w');
  });
  after(async () => {
    try {
      for (const s of servers) await s.stop();
      for (const s of servers)
        assert.deepEqual(
          s.logs().filter((l) => l.level === 'error'),
          [],
          'no internal error logged',
        );
    } finally {
      dir.remove();
    }
  });

  const leafOcsp = (leaf: IssuedLeaf, extra: string[] = []) =>
    ocsp([
      '-issuer',
      ca().intermediates,
      '-cert',
      leaf.leaf,
      '-url',
      `${ca().server.statusUrl}/ocsp`,
      '-CAfile',
      ca().roots,
      ...extra,
    ]);

  it('/health is ok, with no warning, under the 90-day root CRL that init imported', async () => {
    const res = await curl(['--cacert', ca().roots, `${ca().server.publicUrl}/health`]);
    assert.equal(res.status, 200, res.text);
    const { status, warnings } = res.json<{ status: string; warnings: string[] }>();
    assert.deepEqual({ status, warnings }, { status: 'ok', warnings: [] });
    assert.ok(
      !ca()
        .server.logs()
        .some((l) => l.event === 'root_crl_warning'),
    );
  });

  it('shortleaf revoke --reason superseded: OCSP and the CRL show it within seconds', async () => {
    const before = await leafOcsp(L.x, ['-no_nonce']); // leaves a pre-signed response to replace
    assert.equal(before.single(L.x.leaf)?.status, 'good', before.output);
    const r = await shortleafOk(['revoke', L.x.serial, '--reason', 'superseded', '--data', ca().data]);
    assert.match(r.stdout, new RegExp(`^revoked ${L.x.serial} \\(superseded\\) at \\d{4}-`));
    for (const extra of [['-no_nonce'], []]) {
      const s = await pollUntil(
        'OCSP to say revoked',
        async () => {
          const q = await leafOcsp(L.x, extra);
          assert.ok(q.verified, q.output);
          const single = q.single(L.x.leaf);
          return single?.status === 'revoked' ? single : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 100 },
      );
      assert.equal(s.reason, 'superseded');
    }
    const crl = await pollUntil(
      'the CRL to list it',
      async () => {
        const info = await crlInfo((await curl([`${ca().server.statusUrl}/crl`])).body);
        return info.entries.has(L.x.serial) ? info : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    assert.equal(crl.entries.get(L.x.serial)?.reason, 'Superseded');
    // Only keyCompromise replaces a reason (test/lineage.test.ts); any other keeps the first.
    const again = await shortleafOk(['revoke', L.x.serial, '--reason', 'cessationOfOperation', '--data', ca().data]);
    assert.match(again.stdout, /was already revoked \(superseded\)/);
  });

  it('certs list shows every serial with its status; --revoked only the revoked; --expiring 48h the valid ones due within 48 h', async () => {
    const all = rows((await shortleafOk(['certs', 'list', '--data', ca().data])).stdout);
    const status = (leaf: IssuedLeaf, list: Row[]) => list.find((r) => r.serial === leaf.serial)?.status;
    assert.equal(status(L.x, all), 'revoked:superseded');
    assert.equal(status(L.y, all), 'valid');
    assert.equal(status(L.z, all), 'valid');
    assert.ok(all.find((r) => r.serial === L.y.serial)?.names.includes('svc-y.internal'));

    const revoked = rows((await shortleafOk(['certs', 'list', '--data', ca().data, '--revoked'])).stdout);
    assert.deepEqual(
      revoked.map((r) => r.serial),
      [L.x.serial],
    );

    const expiring = rows((await shortleafOk(['certs', 'list', '--data', ca().data, '--expiring', '48h'])).stdout);
    assert.ok(status(L.y, expiring) === 'valid', 'the 24 h leaf is due within 48 h');
    assert.equal(status(L.z, expiring), undefined, 'the 72 h leaf is not');
    assert.equal(status(L.x, expiring), undefined, 'a revoked leaf is not "expiring"');
    for (const r of expiring) {
      assert.equal(r.status, 'valid');
      assert.ok(r.notAfter.getTime() <= Date.now() + 48 * 3_600_000, `${r.serial} expires ${r.notAfter.toISOString()}`);
    }
  });
  it('refuses an unknown serial (certificateNotFound) and removeFromCRL (badRevocationReason), exit 1', async () => {
    const unknown = await shortleaf(['revoke', 'abcdef0123', '--reason', 'superseded', '--data', ca().data]);
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.match(unknown.stderr, /no certificate with serial abcdef0123 was issued here \[certificateNotFound\]/);
    const remove = await shortleaf(['revoke', L.y.serial, '--reason', 'removeFromCRL', '--data', ca().data]);
    assert.equal(remove.code, 1, remove.stderr);
    assert.match(remove.stderr, /\[badRevocationReason\]/);
    assert.equal((await leafOcsp(L.y)).single(L.y.leaf)?.status, 'good');
  });

  it('a revocation recorded while the server is stopped is on the CRL within seconds of the next start', async () => {
    assert.deepEqual(await ca().server.stop(), { code: 0, signal: null });
    await shortleafOk(['revoke', L.w.serial, '--reason', 'keyCompromise', '--data', ca().data]);
    ca().server = await startServer({ data: ca().data });
    servers.push(ca().server);
    const q = await leafOcsp(L.w);
    assert.equal(q.single(L.w.leaf)?.status, 'revoked', q.output);
    // The CRL the server had published before it stopped is still fresh (crl.refreshAfter is 8 h),
    // but it does not list this serial: it must be rebuilt, not served for hours.
    const crl = await pollUntil(
      'the CRL to list the serial revoked while the server was down',
      async () => {
        const info = await crlInfo((await curl([`${ca().server.statusUrl}/crl`])).body);
        return info.entries.has(L.w.serial) ? info : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    assert.equal(crl.entries.get(L.w.serial)?.reason, 'Key Compromise');
  });

  it('after the status URL changed (here: a restart on another port), new leaves pass a CRL check against the served CRL', async () => {
    // Leaves name the new URL as their CRL distribution point; the CRL's issuingDistributionPoint
    // must name it too, or OpenSSL (and nginx ssl_crl) finds no CRL in scope and refuses them.
    const leaf = await ca().issue('svc-v.internal', 'v');
    const v = await pollUntil(
      'a CRL whose scope covers leaves issued now',
      async () => {
        const crl = await curl([`${ca().server.statusUrl}/crl`]);
        const root = await curl([`${ca().server.statusUrl}/root.crl`]);
        writeFileSync(dir.file('v-crl.pem'), await openssl(['crl', '-inform', 'DER', '-outform', 'PEM'], crl.body));
        writeFileSync(dir.file('v-root.pem'), await openssl(['crl', '-inform', 'DER', '-outform', 'PEM'], root.body));
        const r = await opensslResult([
          'verify',
          '-crl_check_all',
          '-CAfile',
          ca().roots,
          '-untrusted',
          ca().intermediates,
          '-CRLfile',
          dir.file('v-crl.pem'),
          '-CRLfile',
          dir.file('v-root.pem'),
          leaf.leaf,
        ]);
        if (!/: OK$/m.test(r.stdout)) throw new Error(r.stdout + r.stderr);
        return r;
      },
      { timeoutMs: 10_000, intervalMs: 500 },
    );
    assert.match(v.stdout, /: OK$/m);
  });
});

describe('the root CRL: production ceremony with a root-delegated OCSP responder', () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  const root = f('root');
  const rootCrt = join(root, 'root.crt');
  const data = f('data');
  const rootEnv = { SHORTLEAF_ROOT_PASSWORD: `root-${randomBytes(12).toString('hex')}` };
  const dataEnv = { SHORTLEAF_PASSWORD: `data-${randomBytes(12).toString('hex')}` };
  let server: RunningServer | undefined;
  const srv = () => {
    assert.ok(server, 'the server did not start');
    return server;
  };

  before(async () => {
    await shortleafOk(['root', 'init', '--out', root], { env: rootEnv });
    await shortleafOk(['intermediate', 'csr', '--data', data, '--out', f('int.csr'), '--ocsp-out', f('ocsp.csr')], {
      env: dataEnv,
    });
    await shortleafOk(
      [
        'root',
        'sign-intermediate',
        '--root',
        root,
        '--csr',
        f('int.csr'),
        '--out',
        f('int.crt'),
        '--ocsp-csr',
        f('ocsp.csr'),
        '--ocsp-out',
        f('ocsp.crt'),
      ],
      { env: rootEnv },
    );
    const imp = await shortleafOk([
      'intermediate',
      'import',
      '--data',
      data,
      '--cert',
      f('int.crt'),
      '--root',
      rootCrt,
      '--ocsp-cert',
      f('ocsp.crt'),
    ]);
    assert.match(imp.stdout, /imported the root-delegated OCSP responder certificate/);
  });
  after(async () => {
    try {
      if (server)
        assert.deepEqual(
          server.logs().filter((l) => l.level === 'error'),
          [],
          'no internal error logged',
        );
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  const intOcsp = () =>
    ocsp(['-issuer', rootCrt, '-cert', f('int.crt'), '-url', `${srv().statusUrl}/ocsp`, '-CAfile', rootCrt]);
  const health = async () => {
    const res = await curl(['--cacert', rootCrt, `${srv().publicUrl}/health`]);
    assert.equal(res.status, 200, res.text);
    return res.json<{ status: string; warnings: string[] }>();
  };
  const rootCrlServed = async () => {
    const res = await curl([`${srv().statusUrl}/root.crl`]);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.contentType, 'application/pkix-crl');
    return { der: res.body, info: await crlInfo(res.body) };
  };

  it('the responder certificate the root signed is for OCSP signing only, with OCSP No Check', async () => {
    const t = await x509TextOfFile(f('ocsp.crt'));
    assert.equal(extension(t, 'X509v3 Extended Key Usage'), 'OCSP Signing');
    assert.match(t, /OCSP No Check/);
    assert.equal(extension(t, 'X509v3 Basic Constraints'), 'CA:FALSE');
    assert.match(t, /Issuer: [^\n]*Shortleaf Root CA/);
  });

  it('root crl --validity 2d + root-crl import; served at /root.crl; the intermediate is good; /health warns (warnBefore 7d)', async () => {
    const crl = await shortleafOk(['root', 'crl', '--root', root, '--out', f('r1.crl'), '--validity', '2d'], {
      env: rootEnv,
    });
    assert.match(crl.stdout, /root CRL number 1 with 0 entries/);
    const imp = await shortleafOk(['root-crl', 'import', f('r1.crl'), '--data', data]);
    assert.match(imp.stdout, /imported root CRL number 1 \(0 entries\)/);
    writeFileSync(f('serve.json'), JSON.stringify({ rootCrl: { warnBefore: '7d' } }));
    server = await startServer({ data, env: dataEnv, args: ['--config', f('serve.json')] });

    const served = await rootCrlServed();
    assert.deepEqual(served.der, readFileSync(f('r1.crl')));
    assert.equal(served.info.number, 1n);
    const q = await intOcsp();
    assert.ok(q.verified, q.output);
    assert.equal(q.single(f('int.crt'))?.status, 'good', q.output);

    const h = await health();
    assert.equal(h.status, 'warn');
    assert.equal(h.warnings.length, 1);
    assert.match(h.warnings[0]!, /root CRL expires at .* sign a new one offline and import it/);
    const logged = srv()
      .logs()
      .find((l) => l.event === 'root_crl_warning');
    assert.ok(logged, `a root_crl_warning log line:\n${srv().stderr()}`);
    assert.equal(logged.level, 'warn');
  });

  it('root crl --revoke <intermediate> --reason cACompromise, imported while serving: OCSP says revoked, /root.crl is number 2, no expiry warning', async () => {
    const intSerial = serialOf(f('int.crt'));
    await shortleafOk(
      ['root', 'crl', '--root', root, '--revoke', intSerial, '--reason', 'cACompromise', '--out', f('r2.crl')],
      { env: rootEnv },
    );
    const imp = await shortleafOk(['root-crl', 'import', f('r2.crl'), '--data', data]);
    assert.match(imp.stdout, /imported root CRL number 2 \(1 entries\)/);
    const s = await pollUntil(
      'OCSP to say the intermediate is revoked',
      async () => {
        const q = await intOcsp();
        assert.ok(q.verified, q.output);
        const single = q.single(f('int.crt'));
        return single?.status === 'revoked' ? single : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    assert.equal(s.reason, 'cACompromise');
    const served = await rootCrlServed();
    assert.equal(served.info.number, 2n);
    assert.equal(served.info.entries.get(intSerial)?.reason, 'CA Compromise');
    // A 90-day root CRL is no reason to warn about expiry, but the active intermediate is now
    // revoked, and the operator must hear it: /health and the log say so.
    const h = await pollUntil(
      '/health to take the 90-day root CRL',
      async () => {
        const r = await health();
        return r.warnings.some((w) => /root CRL (expires|expired)/.test(w)) ? undefined : r;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    assert.equal(h.status, 'warn');
    assert.ok(
      h.warnings.some((w) => /root revoked the active intermediate \(cACompromise\)/.test(w)),
      JSON.stringify(h.warnings),
    );
    assert.ok(
      srv()
        .logs()
        .some((l) => l.event === 'intermediate_warning'),
      'an intermediate_warning log line',
    );
  });

  it('an older root CRL, or one another root signed, is refused with badCrl', async () => {
    const old = await shortleaf(['root-crl', 'import', f('r1.crl'), '--data', data]);
    assert.equal(old.code, 1, old.stderr);
    assert.match(old.stderr, /CRL number 1 is not newer than the imported 2 \[badCrl\]/);

    // Same default name as our root: only the signature can tell them apart.
    await shortleafOk(['root', 'init', '--out', f('other-root')], { env: rootEnv });
    await shortleafOk(['root', 'crl', '--root', f('other-root'), '--out', f('other.crl')], { env: rootEnv });
    const foreign = await shortleaf(['root-crl', 'import', f('other.crl'), '--data', data]);
    assert.equal(foreign.code, 1, foreign.stderr);
    assert.match(foreign.stderr, /not signed by any root this CA trusts \[badCrl\]/);
    assert.equal((await rootCrlServed()).info.number, 2n, 'still serving number 2');
  });
});
