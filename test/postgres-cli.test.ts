// The CLI on PostgreSQL (issue 14, "The interface"): `init --database` makes a development CA in a
// real PostgreSQL database (and refuses one that already has a CA), the admin verbs and `serve` work
// on it through the real CLI with `--database` or SHORTLEAF_DATABASE_URL, `--data` then holds only
// local files, `serve` waits for a database it cannot reach (and stops on SIGTERM while waiting),
// refuses an empty database instead of making a CA in it, and a URL's password never appears in
// anything the CLI prints.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openStore } from '@shortleaf/store';
import { testDatabaseUrl } from '@shortleaf/store/postgres-testing';
import { shortleaf, shortleafArgs, shortleafOk, tempDir, track, type RunResult } from './helpers/cli.js';
import { startDevCa } from './helpers/dev-ca.js';
import { ocsp } from './helpers/revocation.js';
import { freePort, pollUntil, serveExpectingFailure } from './helpers/server.js';
import { recordSecret } from './helpers/secret-log.js';

/** A password the test's PostgreSQL (trust authentication) ignores, so the URL works with it in. */
const PASSWORD = 'pg-url-secret-4f9c2a';
recordSecret(PASSWORD);

const withPassword = (url: string): string => {
  const u = new URL(url);
  u.password = PASSWORD;
  return u.toString();
};

/** Fails when any output of a command holds the URL's password. */
function assertNoPassword(r: Pick<RunResult, 'stdout' | 'stderr'>, what: string): void {
  assert.ok(!r.stdout.includes(PASSWORD) && !r.stderr.includes(PASSWORD), `${what} printed the URL password`);
}

/** Every table's row count, the engine's own bookkeeping left out. */
async function counts(url: string): Promise<Record<string, number>> {
  const store = await openStore({ engine: 'postgres', url });
  try {
    const { schema_migrations: _, ...rest } = await store.counts();
    return rest;
  } finally {
    await store.close();
  }
}

test('the CLI on PostgreSQL: init, admin verbs and serve with --database', async (t) => {
  const url = withPassword(await testDatabaseUrl(t));
  const dir = tempDir();
  t.after(() => dir.remove());
  const data = join(dir.path, 'data');
  const outputs: RunResult[] = [];
  const ok = async (args: string[], env?: Record<string, string>) => {
    const r = await shortleafOk(args, env === undefined ? {} : { env });
    outputs.push(r);
    return r;
  };

  await t.test('init --data DIR --database URL makes the CA in the database; DIR holds only local files', async () => {
    const r = await ok(['init', '--data', data, '--database', url]);
    assert.match(r.stdout, /initialised PostgreSQL postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\//);
    assert.match(r.stdout, /next: shortleaf serve --data .* --database postgres:\/\/postgres:\*\*\*@/);
    assert.ok(!existsSync(join(data, 'shortleaf.db')), 'no SQLite database in --data');
    for (const file of ['password', 'offline-root/root.crt', 'provisioners/admin.jwk'])
      assert.ok(existsSync(join(data, file)), `${file} in --data`);
    const c = await counts(url);
    assert.equal(c.issuers, 1);
    assert.equal(c.provisioners, 2);
  });

  await t.test('a second init is refused and changes nothing', async () => {
    const before = await counts(url);
    const again = await shortleaf(['init', '--data', join(dir.path, 'other'), '--database', url]);
    outputs.push(again);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /already holds a CA \(intermediate primary\); nothing changed/);
    assert.deepEqual(await counts(url), before);
  });

  await t.test('migrate --database URL says the database is up to date', async () => {
    const r = await ok(['migrate', '--database', url]);
    assert.match(
      r.stdout,
      /database in PostgreSQL postgres:\/\/postgres:\*\*\*@.* is up to date: [1-9]\d* migrations on record/,
    );
  });

  await t.test('provisioner list and intermediate list need no --data; the env variable works too', async () => {
    const list = await ok(['provisioner', 'list', '--database', url]);
    assert.match(list.stdout, /^admin\tjwk\t/m);
    assert.match(list.stdout, /^acme\tacme\t/m);
    const viaEnv = await ok(['intermediate', 'list'], { SHORTLEAF_DATABASE_URL: url });
    assert.match(viaEnv.stdout, /^primary\s+active\s/m);
    const added = await ok([
      'provisioner',
      'add',
      'ops',
      '--database',
      url,
      '--key-out',
      join(dir.path, 'ops.jwk'),
      '--allow-dns',
      '*.ops.test',
    ]);
    assert.match(added.stdout, /provisioner ops added/);
    assert.match((await ok(['provisioner', 'list', '--database', url])).stdout, /^ops\tjwk\t/m);
  });

  await t.test('serve --database issues; revoke, certs list and audit on the database see it', async (tt) => {
    const ca = await startDevCa(dir.path, { init: false, serve: { args: ['--database', url] } });
    tt.after(() => ca.server.stop());
    assert.ok(!existsSync(join(data, 'serve.lock')), 'serve on PostgreSQL locks nothing in --data');
    const leaf = await ca.issue('svc.pg.test', 'svc');
    const certs = await ok(['certs', 'list', '--database', url]);
    assert.match(certs.stdout, new RegExp(`^${leaf.serial}\\tvalid\\t`, 'm'));

    const revoked = await ok(['revoke', leaf.serial, '--reason', 'keyCompromise', '--database', url]);
    assert.match(revoked.stdout, new RegExp(`revoked ${leaf.serial} \\(keyCompromise\\)`));
    // The running server learns of the CLI's revocation from the database.
    await pollUntil(
      'OCSP says revoked',
      async () => {
        const r = await ocsp([
          '-issuer',
          ca.intermediates,
          '-cert',
          leaf.leaf,
          '-url',
          `${ca.server.statusUrl}/ocsp`,
          '-CAfile',
          ca.roots,
        ]);
        return r.single(leaf.leaf)?.status === 'revoked' ? true : undefined;
      },
      { timeoutMs: 15_000 },
    );
    const after = await ok(['certs', 'list', '--revoked', '--database', url]);
    assert.match(after.stdout, new RegExp(`^${leaf.serial}\\trevoked:keyCompromise\\t`, 'm'));
    const audit = await ok(['audit', '--database', url, '--json']);
    const actions = audit.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { action: string; serial: string | null }).action);
    assert.ok(actions.includes('issue') && actions.includes('revoke'), actions.join(','));

    const stopped = await ca.server.stop();
    assert.equal(stopped.code, 0);
    assertNoPassword({ stdout: ca.server.stdout(), stderr: ca.server.stderr() }, 'serve');
  });

  await t.test('backup refuses --database and says what to use', async () => {
    const r = await shortleaf(['backup', '--database', url, '--out', join(dir.path, 'b.db')]);
    outputs.push(r);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /pg_dump/);
  });

  await t.test('no output of any verb held the URL password', () => {
    assert.ok(outputs.length > 5);
    for (const r of outputs) assertNoPassword(r, 'a verb');
  });
});

test('serve on an empty PostgreSQL database refuses to make a CA and names the command that does', async (t) => {
  const url = withPassword(await testDatabaseUrl(t));
  const dir = tempDir();
  t.after(() => dir.remove());
  const data = join(dir.path, 'data');
  const r = await serveExpectingFailure({ data, args: ['--database', url], timeoutMs: 60_000 });
  assert.ok(!r.listened && !r.timedOut, r.stderr);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /has no active intermediate.*Run, once: shortleaf init --data DIR --database URL/);
  assertNoPassword(r, 'serve');
  // Nothing was initialised: no CA in the database, nothing written to --data.
  assert.equal((await counts(url)).issuers, 0);
  assert.ok(!existsSync(data), '--data was not created');
});

test('serve waits for a database it cannot reach, says so each time, and stops promptly on SIGTERM', async (t) => {
  const dir = tempDir();
  t.after(() => dir.remove());
  // Nothing listens on this port: every connection is refused.
  const url = `postgres://shortleaf:${PASSWORD}@127.0.0.1:${await freePort()}/shortleaf`;
  const child = track(
    process.execPath,
    shortleafArgs(['serve', '--data', join(dir.path, 'data'), '--database', url, '--listen', '127.0.0.1:0']),
    {},
  );
  t.after(() => void child.kill('SIGKILL'));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs = () =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const waits = await pollUntil(
    'two database_unavailable lines',
    async () => {
      const w = logs().filter((l) => l.event === 'database_unavailable');
      return w.length >= 2 ? w : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
  assert.equal(waits[0]!.note, 'retrying in 1 s');
  assert.equal(waits[1]!.note, 'retrying in 2 s');
  assert.deepEqual(
    waits.map((w) => w.attempt),
    [1, 2],
  );
  assert.match(String(waits[0]!.database), /^postgres:\/\/shortleaf:\*\*\*@127\.0\.0\.1:\d+\/shortleaf$/);
  assert.match(String(waits[0]!.error), /ECONNREFUSED/);

  const sent = Date.now();
  child.kill('SIGTERM');
  const code = await exited;
  assert.ok(Date.now() - sent < 5_000, `stopped ${Date.now() - sent} ms after SIGTERM`);
  assert.equal(code, 0, stderr);
  assert.ok(
    logs().some((l) => l.event === 'stopped' && l.signal === 'SIGTERM'),
    `logs that it stopped while waiting:\n${stderr}`,
  );
  assert.ok(!stderr.includes(PASSWORD), 'the password is not in the log');
});

test('VERB --help mentions --database for every verb that reaches the store', async () => {
  for (const verb of ['init', 'serve', 'migrate', 'intermediate', 'provisioner', 'acme', 'revoke', 'certs', 'audit']) {
    const r = await shortleafOk([verb, '--help']);
    assert.match(r.stdout, /--database URL/, `${verb} --help:\n${r.stdout}`);
  }
  const copy = await shortleafOk(['store', '--help']);
  assert.match(copy.stdout, /shortleaf store copy --from-data DIR --to URL/);
});
