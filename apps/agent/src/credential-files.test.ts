import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateKeyPair, type KeyObject } from '@shortleaf/pki';
import { writeTempFile } from './atomic-file.js';
import { makeCa, makeLeaf, type Ca } from './test-fixtures.js';
import {
  CredentialFilesError,
  keyMatchesCertificate,
  readCredentials,
  recoverCredentials,
  writeCredentials,
  type CredentialFilesErrorCode,
  type CredentialPaths,
  type Credentials,
} from './credential-files.js';

const HOUR = 3_600_000;

const newKey = (): KeyObject => generateKeyPair('EC-P256').privateKey;
const keyPem = (key: KeyObject): string => key.export({ format: 'pem', type: 'pkcs8' }) as string;

/** A fresh leaf for `key` under `ca`, as the credential the agent would write. */
function credentials(ca: Ca, key: KeyObject): Credentials {
  const leaf = makeLeaf(ca, 'svc.test', { key }).pem;
  return { certPem: leaf + ca.pem, chainPem: ca.pem, keyPem: keyPem(key) };
}

const root = makeCa('Test Root');
const int1 = makeCa('Test Intermediate 1', root);
const int2 = makeCa('Test Intermediate 2', root);

const base = mkdtempSync(join(tmpdir(), 'agent-credentials-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
/** A fresh folder and the three paths in it. */
function fresh(): CredentialPaths & { dir: string; chain: string } {
  const dir = join(base, `case-${n++}`);
  mkdirSync(dir);
  return { dir, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), chain: join(dir, 'chain.pem') };
}

const mode = (path: string): number => statSync(path).mode & 0o777;
const ino = (path: string): number => statSync(path).ino;
const read = (path: string): string => readFileSync(path, 'utf8');
const snapshot = (p: CredentialPaths & { chain: string }) => [read(p.cert), read(p.key), read(p.chain)];

function assertCode(fn: () => unknown, code: CredentialFilesErrorCode, message?: RegExp): CredentialFilesError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof CredentialFilesError, `expected a CredentialFilesError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  if (message !== undefined) assert.match(caught.message, message);
  return caught;
}

describe('keyMatchesCertificate', () => {
  it('is true for the leaf key only, and false for garbage', () => {
    const key = newKey();
    const c = credentials(int1, key);
    assert.equal(keyMatchesCertificate(c.keyPem, c.certPem), true);
    assert.equal(keyMatchesCertificate(keyPem(newKey()), c.certPem), false);
    // The chain's certificates are not the leaf.
    assert.equal(keyMatchesCertificate(c.keyPem, c.chainPem), false);
    assert.equal(keyMatchesCertificate('not a key', c.certPem), false);
    assert.equal(keyMatchesCertificate(c.keyPem, 'not a certificate'), false);
  });
});

describe('writeCredentials and readCredentials', () => {
  it('round-trips, and reads null before the first write', () => {
    const p = fresh();
    assert.equal(readCredentials(p), null);
    const c = credentials(int1, newKey());
    writeCredentials(p, c);
    assert.deepEqual(readCredentials(p), c);
    assert.deepEqual(readdirSync(p.dir).sort(), ['cert.pem', 'chain.pem', 'key.pem']);
  });

  it('without a chain file, reads the chain from behind the leaf', () => {
    const p = fresh();
    const c = credentials(int1, newKey());
    writeCredentials({ cert: p.cert, key: p.key }, c);
    assert.deepEqual(readdirSync(p.dir).sort(), ['cert.pem', 'key.pem']);
    assert.deepEqual(readCredentials({ cert: p.cert, key: p.key }), c);
  });

  it('creates the key 0600 and the others 0644 even with umask 000', () => {
    const previous = process.umask(0);
    try {
      const p = fresh();
      writeCredentials(p, credentials(int1, newKey()));
      assert.equal(mode(p.key), 0o600);
      assert.equal(mode(p.cert), 0o644);
      assert.equal(mode(p.chain), 0o644);
      // A key file someone left world-readable is replaced by a private one.
      rmSync(p.key);
      writeFileSync(p.key, 'placeholder', { mode: 0o666 });
      assert.equal(mode(p.key), 0o666);
      writeCredentials(p, credentials(int1, newKey()));
      assert.equal(mode(p.key), 0o600);
      // A missing folder for the key is created private.
      const nested = { cert: join(p.dir, 'certs', 'c.pem'), key: join(p.dir, 'private', 'k.pem') };
      writeCredentials(nested, credentials(int1, newKey()));
      assert.equal(mode(join(p.dir, 'private')), 0o700);
      assert.equal(mode(nested.key), 0o600);
    } finally {
      process.umask(previous);
    }
  });

  it('replaces only the certificate on a renewal without a new key, and nothing when nothing changed', () => {
    const p = fresh();
    const key = newKey();
    writeCredentials(p, credentials(int1, key));
    const before = { cert: ino(p.cert), key: ino(p.key), chain: ino(p.chain) };
    const renewed = credentials(int1, key);
    writeCredentials(p, renewed);
    assert.notEqual(ino(p.cert), before.cert);
    assert.equal(ino(p.key), before.key);
    assert.equal(ino(p.chain), before.chain);
    assert.deepEqual(readCredentials(p), renewed);

    const now = { cert: ino(p.cert), key: ino(p.key), chain: ino(p.chain) };
    writeCredentials(p, renewed);
    assert.deepEqual({ cert: ino(p.cert), key: ino(p.key), chain: ino(p.chain) }, now);
  });

  it('replaces all three on a rekey under a new intermediate, leaving no journal or temporary file', () => {
    const p = fresh();
    writeCredentials(p, credentials(int1, newKey()));
    const before = [ino(p.cert), ino(p.key), ino(p.chain)];
    const next = credentials(int2, newKey());
    writeCredentials(p, next);
    const now = [ino(p.cert), ino(p.key), ino(p.chain)];
    for (let i = 0; i < 3; i++) assert.notEqual(now[i], before[i]);
    assert.deepEqual(readCredentials(p), next);
    assert.deepEqual(readdirSync(p.dir).sort(), ['cert.pem', 'chain.pem', 'key.pem']);
  });

  it('refuses a key that does not match the leaf, and says so without the key', () => {
    const p = fresh();
    const good = credentials(int1, newKey());
    writeCredentials(p, good);
    const files = snapshot(p);
    const wrongKey = keyPem(newKey());
    const err = assertCode(
      () => writeCredentials(p, { ...good, keyPem: wrongKey }),
      'keyMismatch',
      /does not match the certificate/,
    );
    const body = wrongKey.split('\n').slice(1, -2).join('');
    assert.ok(!err.message.includes(body.slice(0, 20)) && !err.message.includes('PRIVATE'));
    assertCode(() => writeCredentials(p, { ...good, keyPem: 'garbage' }), 'badFile', /the new key does not hold/);
    assert.deepEqual(snapshot(p), files);
    assert.deepEqual(readdirSync(p.dir).sort(), ['cert.pem', 'chain.pem', 'key.pem']);
  });

  it('refuses a chain that did not issue the leaf', () => {
    const p = fresh();
    const c = credentials(int1, newKey());
    assertCode(() => writeCredentials(p, { ...c, chainPem: int2.pem }), 'chainMismatch');
    assertCode(
      () => writeCredentials(p, { ...c, certPem: c.certPem.slice(0, c.certPem.indexOf(int1.pem)) + int2.pem }),
      'chainMismatch',
    );
    assertCode(() => writeCredentials({ cert: p.cert, key: p.cert }, c), 'badPaths');
    assert.deepEqual(readdirSync(p.dir), []);
  });

  it('reads mismatched or half-present files as errors, naming the files', () => {
    const p = fresh();
    const c = credentials(int1, newKey());
    writeCredentials(p, c);
    writeFileSync(p.key, keyPem(newKey()));
    assertCode(() => readCredentials(p), 'keyMismatch', new RegExp(`${p.key}.*${p.cert}`));
    writeFileSync(p.key, c.keyPem);
    writeFileSync(p.chain, int2.pem);
    assertCode(() => readCredentials(p), 'chainMismatch');
    writeFileSync(p.chain, 'junk');
    assertCode(() => readCredentials(p), 'badFile');
    rmSync(p.chain);
    assert.deepEqual(readCredentials(p), c);
    rmSync(p.key);
    assertCode(() => readCredentials(p), 'incomplete', /key\.pem does not/);
  });
});

describe('recoverCredentials', () => {
  it('rolls forward a rekey that a kill interrupted after its first rename', () => {
    const p = fresh();
    const old = credentials(int1, newKey());
    const next = credentials(int2, newKey());
    writeCredentials(p, old);
    // What writeCredentials does before the kill: temporary files, the journal, the key renamed.
    const renames = [
      { from: writeTempFile(p.key, next.keyPem, 0o600), to: resolve(p.key) },
      { from: writeTempFile(p.chain, next.chainPem, 0o644), to: resolve(p.chain) },
      { from: writeTempFile(p.cert, next.certPem, 0o644), to: resolve(p.cert) },
    ];
    writeFileSync(`${p.cert}.pending`, JSON.stringify({ version: 1, renames }));
    renameSync(renames[0]!.from, renames[0]!.to);
    assert.equal(keyMatchesCertificate(read(p.key), read(p.cert)), false);

    assert.deepEqual(readCredentials(p), next);
    assert.deepEqual(readdirSync(p.dir).sort(), ['cert.pem', 'chain.pem', 'key.pem']);
  });

  it('deletes temporary files without a journal and keeps the old credential', () => {
    const p = fresh();
    const c = credentials(int1, newKey());
    writeCredentials(p, c);
    const next = credentials(int2, newKey());
    writeTempFile(p.key, next.keyPem, 0o600);
    writeTempFile(p.cert, next.certPem, 0o644);
    writeTempFile(`${p.cert}.pending`, '{"version":', 0o644);
    writeFileSync(join(p.dir, 'cert.pem.backup'), 'not ours');
    recoverCredentials(p);
    assert.deepEqual(readdirSync(p.dir).sort(), ['cert.pem', 'cert.pem.backup', 'chain.pem', 'key.pem']);
    assert.deepEqual(readCredentials(p), c);
  });

  it('refuses a journal it did not write rather than rename what it names', () => {
    const p = fresh();
    writeCredentials(p, credentials(int1, newKey()));
    const victim = join(p.dir, 'other');
    writeFileSync(victim, 'x');
    writeFileSync(
      `${p.cert}.pending`,
      JSON.stringify({ version: 1, renames: [{ from: victim, to: resolve(p.cert) }] }),
    );
    assertCode(() => recoverCredentials(p), 'badJournal', /cert\.pem\.pending/);
    assert.equal(read(victim), 'x');
  });
});

describe('credential files under SIGKILL', { concurrency: 2 }, () => {
  const credentialFiles = pathToFileURL(fileURLToPath(new URL('./credential-files.ts', import.meta.url))).href;
  const repo = fileURLToPath(new URL('../../..', import.meta.url));
  const KILLS = 30;

  /** A writer that loops over `sets` until killed; prints `ready` once its first write is done. */
  const WRITER = `
import { readFileSync, writeSync } from 'node:fs';
const { writeCredentials } = await import(process.argv[2]);
const { paths, sets } = JSON.parse(readFileSync(process.argv[3], 'utf8'));
writeCredentials(paths, sets[0]);
writeSync(1, 'ready\\n');
for (let i = 1; ; i++) writeCredentials(paths, sets[i % 2]);
`;

  /** Starts the writer, waits for it to be writing, kills it 5–40 ms later. */
  function runAndKill(dir: string): Promise<void> {
    return new Promise((done, fail) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(dir, 'writer.mjs'), credentialFiles, join(dir, 'sets.json')],
        {
          cwd: repo,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stderr = '';
      let ready = false;
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout.once('data', () => {
        ready = true;
        setTimeout(() => child.kill('SIGKILL'), 5 + Math.random() * 35);
      });
      // A writer that never gets going must not hang the test.
      const stuck = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('error', fail);
      child.on('exit', (code, signal) => {
        clearTimeout(stuck);
        if (ready && signal === 'SIGKILL') done();
        else
          fail(
            new Error(
              `the writer stopped (${signal ?? code}) ${ready ? 'on its own' : 'before its first write'}: ${stderr}`,
            ),
          );
      });
    });
  }

  async function torture(rekey: boolean): Promise<{ interrupted: number; tornBeforeRecovery: number }> {
    const p = fresh();
    const sharedKey = newKey();
    const sets = rekey
      ? [credentials(int1, newKey()), credentials(int2, newKey())]
      : [credentials(int1, sharedKey), credentials(int1, sharedKey)];
    writeFileSync(join(p.dir, 'writer.mjs'), WRITER);
    writeFileSync(
      join(p.dir, 'sets.json'),
      JSON.stringify({ paths: { cert: p.cert, key: p.key, chain: p.chain }, sets }),
    );
    const ours = ['cert.pem', 'chain.pem', 'key.pem', 'sets.json', 'writer.mjs'];
    let interrupted = 0;
    let tornBeforeRecovery = 0;
    for (let i = 0; i < KILLS; i++) {
      await runAndKill(p.dir);
      const left = readdirSync(p.dir).filter((f) => !ours.includes(f));
      if (left.length > 0) interrupted++;
      for (const f of left.filter((name) => name.startsWith('key.pem.tmp-')))
        assert.equal(mode(join(p.dir, f)), 0o600, 'a temporary key file is private');
      const matches = keyMatchesCertificate(read(p.key), read(p.cert));
      if (!matches) tornBeforeRecovery++;
      if (!rekey) {
        // One rename per renewal: the files match at every instant, recovery or not.
        assert.ok(matches, `kill ${i}: key and certificate do not match before recovery`);
        assert.ok(sets.some((s) => s.certPem === read(p.cert)));
        assert.equal(read(p.chain), int1.pem);
      }
      recoverCredentials(p);
      assert.deepEqual(readdirSync(p.dir).sort(), ours, `kill ${i}: recovery leaves only the credential files`);
      const got = readCredentials(p);
      assert.ok(got !== null);
      assert.ok(
        sets.some((s) => s.certPem === got.certPem && s.keyPem === got.keyPem && s.chainPem === got.chainPem),
        `kill ${i}: the files are not one whole credential`,
      );
    }
    return { interrupted, tornBeforeRecovery };
  }

  it('renewals without a new key: the files match before and after recovery', async (t) => {
    const r = await torture(false);
    t.diagnostic(`${KILLS} kills, ${r.interrupted} left temporary files`);
  });

  it('rekeys under alternating intermediates: the files match after recovery', async (t) => {
    const r = await torture(true);
    t.diagnostic(
      `${KILLS} kills, ${r.interrupted} left temporary files or a journal, ${r.tornBeforeRecovery} torn until recovery`,
    );
  });
});
