// What a newcomer hit on the command line (shared/newcomer-2026-12.md): `VERB --help` failing with
// parseArgs' own text, an empty `provisioner list` printing nothing, and no way to mint the
// revoke token the README describes.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, run, shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa } from './helpers/dev-ca.js';
import { curl } from './helpers/http.js';
import { ocsp } from './helpers/revocation.js';
import { pollUntil } from './helpers/server.js';

describe('shortleaf VERB --help', () => {
  const verbs = [
    'root',
    'intermediate',
    'init',
    'serve',
    'migrate',
    'provisioner',
    'token',
    'certificate',
    'renew',
    'revoke',
    'certs',
    'root-crl',
    'acme',
    'audit',
    'backup',
    'restore',
  ];
  for (const verb of verbs) {
    it(`${verb} --help prints that verb's usage and exits 0`, async () => {
      const r = await shortleaf([verb, '--help']);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.ok(
        lines.length > 0 && lines.every((l) => l.startsWith(`shortleaf ${verb} `) || l === `shortleaf ${verb}`),
        r.stdout,
      );
    });
  }

  it('-h works after other flags too, and an unknown flag is still a usage error', async () => {
    const h = await shortleaf(['intermediate', 'import', '--data', '/nonexistent', '-h']);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /shortleaf intermediate import --data DIR/);
    const bad = await shortleaf(['intermediate', 'list', '--bogus']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bogus/);
  });
});

describe('provisioner list and revoke tokens', () => {
  const dir = tempDir();
  let devCa: DevCa | undefined;
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };
  before(async () => {
    devCa = await startDevCa(dir.path);
  });
  after(async () => {
    try {
      await devCa?.server.stop();
    } finally {
      dir.remove();
    }
  });

  it('provisioner list prints a header, and says what to do when there is none', async () => {
    const listed = await shortleafOk(['provisioner', 'list', '--data', ca().data]);
    const [header, ...rows] = listed.stdout.trim().split('\n');
    assert.equal(header, 'NAME\tTYPE\tPOLICY\tOPTIONS');
    assert.deepEqual(rows.map((r) => r.split('\t')[0]).sort(), ['acme', 'admin']);

    const empty = tempDir();
    try {
      await shortleafOk(['migrate', '--data', empty.path]);
      const none = await shortleafOk(['provisioner', 'list', '--data', empty.path]);
      assert.match(none.stdout, /^no provisioners yet: add one with `shortleaf provisioner add/);
    } finally {
      empty.remove();
    }
  });

  it('shortleaf token SERIAL --revoke mints a token POST /api/v1/revoke accepts, once', async () => {
    const leaf = await ca().issue('svc-revoke.internal', 'rv');
    const tok = await shortleafOk([
      'token',
      leaf.serial,
      '--revoke',
      '--provisioner',
      'admin',
      '--key',
      ca().adminKey,
      '--ca',
      ca().server.publicUrl,
    ]);
    const body = JSON.stringify({ serial: leaf.serial, reason: 'superseded', token: tok.stdout.trim() });
    const post = () =>
      curl([
        '--cacert',
        ca().roots,
        '-H',
        'content-type: application/json',
        '--data',
        body,
        `${ca().server.publicUrl}/api/v1/revoke`,
      ]);
    const res = await post();
    assert.equal(res.status, 200, res.text);
    const status = await pollUntil(
      'OCSP to say revoked',
      async () => {
        const q = await ocsp([
          '-issuer',
          ca().intermediates,
          '-cert',
          leaf.leaf,
          '-url',
          `${ca().server.statusUrl}/ocsp`,
          '-CAfile',
          ca().roots,
        ]);
        const s = q.single(leaf.leaf)?.status;
        return s === 'revoked' ? s : undefined;
      },
      { timeoutMs: 15_000 },
    );
    assert.equal(status, 'revoked');
    // The same token again: single-use.
    const again = await post();
    assert.equal(again.status, 401, again.text);
    assert.match(again.json<{ type: string }>().type, /tokenReplayed$/);

    // A sign token is not a revoke token (its audience is the sign URL), and --revoke takes no names.
    const signTok = await shortleafOk([
      'token',
      'svc-revoke.internal',
      '--provisioner',
      'admin',
      '--key',
      ca().adminKey,
      '--ca',
      ca().server.publicUrl,
    ]);
    const wrong = await curl([
      '--cacert',
      ca().roots,
      '-H',
      'content-type: application/json',
      '--data',
      JSON.stringify({ serial: leaf.serial, reason: 'superseded', token: signTok.stdout.trim() }),
      `${ca().server.publicUrl}/api/v1/revoke`,
    ]);
    assert.equal(wrong.status, 401, wrong.text);
    assert.match(wrong.json<{ type: string }>().type, /tokenAudience$/);
    const mixed = await shortleaf([
      'token',
      leaf.serial,
      '--revoke',
      '--san',
      'x.internal',
      '--provisioner',
      'admin',
      '--key',
      ca().adminKey,
      '--ca',
      ca().server.publicUrl,
    ]);
    assert.equal(mixed.code, 2);
  });
});

describe('running shortleaf from another directory', () => {
  it('bin/shortleaf and `pnpm shortleaf` resolve relative paths against the caller, not the checkout', async () => {
    const cwd = tempDir();
    try {
      const viaBin = await run(join(REPO_ROOT, 'bin', 'shortleaf'), ['migrate', '--data', 'via-bin'], {
        cwd: cwd.path,
      });
      assert.equal(viaBin.code, 0, viaBin.stderr);
      assert.ok(existsSync(join(cwd.path, 'via-bin', 'shortleaf.db')), 'bin/shortleaf wrote elsewhere');
      // pnpm runs the script in the checkout and sets INIT_CWD to where it was typed.
      const viaPnpm = await run('pnpm', ['-s', '--dir', REPO_ROOT, 'shortleaf', 'migrate', '--data', 'via-pnpm'], {
        cwd: cwd.path,
      });
      assert.equal(viaPnpm.code, 0, viaPnpm.stderr);
      assert.ok(existsSync(join(cwd.path, 'via-pnpm', 'shortleaf.db')), 'pnpm shortleaf wrote into the checkout');
      assert.ok(!existsSync(join(REPO_ROOT, 'via-pnpm')));
    } finally {
      cwd.remove();
    }
  });
});

describe('intermediate csr says what it did', () => {
  it('names where the key and CSR went and the next step, and keeps stdout to the PEM without --out', async () => {
    const d = tempDir();
    try {
      await shortleafOk(['init', '--data', d.file('data')]);
      const withOut = await shortleafOk([
        'intermediate',
        'csr',
        '--data',
        d.file('data'),
        '--name',
        'next',
        '--out',
        d.file('next.csr'),
      ]);
      assert.match(
        withOut.stdout,
        /^intermediate next: key sealed in .*, CSR in .*next\.csr; next, offline: shortleaf root sign-intermediate/,
      );
      const toStdout = await shortleafOk(['intermediate', 'csr', '--data', d.file('data'), '--name', 'third']);
      assert.match(
        toStdout.stdout,
        /^-----BEGIN CERTIFICATE REQUEST-----\n[\s\S]*-----END CERTIFICATE REQUEST-----\n$/,
      );
      assert.match(toStdout.stderr, /intermediate third: key sealed in/);
    } finally {
      d.remove();
    }
  });
});
