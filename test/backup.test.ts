// Backup and restore end to end: `shortleaf backup` copies the database while issuance keeps
// running, `shortleaf restore` brings the copy back in a fresh data directory, and the restored CA
// neither reuses a serial nor a CRL number the original published after the backup. Also
// `shortleaf audit`, which reads the log both CAs keep.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { databasePath } from './helpers/data.js';
import { request } from './helpers/http.js';
import { openssl } from './helpers/openssl.js';
import { crlInfo } from './helpers/revocation.js';
import { pollUntil, startServer, type RunningServer } from './helpers/server.js';
import { Database, mintToken } from './helpers/workspace.js';

interface Issued {
  serial: string;
  at: number;
}

describe('backup and restore', () => {
  const dir = tempDir();
  const original = dir.file('original');
  const restored = dir.file('restored');
  const backupFile = dir.file('backups/shortleaf-backup.db');
  const servers: RunningServer[] = [];
  let csrPem = '';
  let rootPem = '';
  let adminJwk: Record<string, string> = {};

  before(async () => {
    await shortleafOk(['init', '--data', original]);
    await openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      dir.file('leaf.key'),
      '-subj',
      '/CN=backup.internal',
      '-addext',
      'subjectAltName=DNS:backup.internal',
      '-out',
      dir.file('leaf.csr'),
    ]);
    csrPem = readFileSync(dir.file('leaf.csr'), 'utf8');
    rootPem = readFileSync(join(original, 'offline-root', 'root.crt'), 'utf8');
    const { provisioner: _, ...jwk } = JSON.parse(
      readFileSync(join(original, 'provisioners', 'admin.jwk'), 'utf8'),
    ) as Record<string, string>;
    adminJwk = jwk;
    servers.push(await startServer({ data: original }));
  });

  after(async () => {
    try {
      for (const s of servers) await s.stop();
    } finally {
      dir.remove();
    }
  });

  /** One certificate over POST /api/v1/sign with a fresh one-time token; returns its serial. */
  async function issue(server: RunningServer): Promise<Issued> {
    const token = await mintToken({
      provisioner: 'admin',
      privateJwk: adminJwk,
      caUrl: server.publicUrl,
      subject: 'backup.internal',
      sans: ['backup.internal'],
    });
    const res = await request(`${server.api}/api/v1/sign`, {
      method: 'POST',
      ca: rootPem,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ csr: csrPem, token }),
    });
    assert.equal(res.status, 201, res.text);
    return { serial: res.json<{ serial: string }>().serial, at: Date.now() };
  }

  const crlNumbersIn = (dbFile: string): bigint[] => {
    const db = new Database(dbFile, { readonly: true });
    try {
      return (db.prepare('SELECT number FROM crls').safeIntegers(true).pluck().all() as bigint[]).sort((a, b) =>
        a < b ? -1 : a > b ? 1 : 0,
      );
    } finally {
      db.close();
    }
  };
  const servedCrlNumber = async (server: RunningServer): Promise<bigint> => {
    const res = await request(`${server.status}/crl`);
    assert.equal(res.status, 200, res.text);
    return (await crlInfo(res.body)).number;
  };

  // Filled in by the first test, read by the later ones.
  const beforeBackup: Issued[] = [];
  const afterBackupOnOriginal: Issued[] = [];
  let backupMaxCrl = 0n;
  let originalMaxCrl = 0n;

  it('backup runs while issuance runs: the copy is 0600, passes integrity_check, and holds every certificate issued before it started', async () => {
    const server = servers[0]!;
    for (let i = 0; i < 5; i++) beforeBackup.push(await issue(server));
    // Two issuing loops keep the server writing during the whole backup.
    let stop = false;
    const during: Issued[] = [];
    const loop = async () => {
      while (!stop) during.push(await issue(server));
    };
    const loops = [loop(), loop()];
    try {
      await pollUntil('the loops to be issuing', async () => (during.length >= 4 ? true : undefined), {
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      const startedAt = Date.now();
      const settled = during.filter((c) => c.at < startedAt);
      const r = await shortleafOk(['backup', '--data', original, '--out', backupFile]);
      assert.match(r.stdout, /not the passphrase/);
      const endedAt = Date.now();
      beforeBackup.push(...settled);
      // Keep issuing a little after the backup, so the original has serials the backup lacks.
      await pollUntil(
        'issuance after the backup',
        async () => (during.filter((c) => c.at > endedAt).length >= 4 ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 50 },
      );
      stop = true;
      await Promise.all(loops);
      afterBackupOnOriginal.push(...during.filter((c) => c.at > endedAt));
    } finally {
      stop = true;
      await Promise.allSettled(loops);
    }

    assert.equal(statSync(backupFile).mode & 0o777, 0o600, 'the backup holds sealed keys: 0600');
    assert.deepEqual(
      readdirSync(dir.file('backups')),
      ['shortleaf-backup.db'],
      'one self-contained file, no -wal and no temporary left behind',
    );
    const db = new Database(backupFile, { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      const issued = new Set(
        db.prepare("SELECT serial FROM certificates WHERE status = 'issued'").pluck().all() as string[],
      );
      for (const c of beforeBackup)
        assert.ok(issued.has(c.serial), `certificate ${c.serial}, issued before the backup started, is in it`);
      for (const c of afterBackupOnOriginal)
        assert.ok(!issued.has(c.serial), `certificate ${c.serial}, issued after the backup finished, is not`);
    } finally {
      db.close();
    }
    backupMaxCrl = crlNumbersIn(backupFile).at(-1) ?? 0n;
    assert.ok(backupMaxCrl > 0n, 'the backup holds the CRL the server published');
  });

  it('backup refuses to overwrite a file unless --force', async () => {
    const r = await shortleaf(['backup', '--data', original, '--out', backupFile]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already exists; pass --force/);
  });

  it('after the backup the original publishes CRLs the backup never saw', async () => {
    const server = servers[0]!;
    await shortleafOk(['revoke', afterBackupOnOriginal[0]!.serial, '--reason', 'superseded', '--data', original]);
    await pollUntil(
      'the original to publish a newer CRL',
      async () => ((await servedCrlNumber(server)) > backupMaxCrl ? true : undefined),
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    originalMaxCrl = crlNumbersIn(databasePath(original)).at(-1)!;
    assert.ok(originalMaxCrl > backupMaxCrl);
  });

  it('restore is refused while a server holds the data directory, and over an existing database without --force', async () => {
    const held = await shortleaf(['restore', '--data', original, '--from', backupFile, '--force']);
    assert.equal(held.code, 1, held.stderr);
    assert.match(held.stderr, /restore refused: another shortleaf serve/);
    const other = dir.file('other');
    await shortleafOk(['init', '--data', other]);
    const exists = await shortleaf(['restore', '--data', other, '--from', backupFile]);
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /already exists; restore into an empty data directory, or pass --force/);
  });

  it('restore refuses a file that is not a Shortleaf database and leaves the data directory without one', async () => {
    writeFileSync(dir.file('garbage.db'), 'this is not a database'.repeat(100));
    const g = await shortleaf(['restore', '--data', dir.file('g'), '--from', dir.file('garbage.db')]);
    assert.equal(g.code, 1);
    assert.match(
      g.stderr,
      /garbage\.db is not a backup this version can restore: .*not a database \[notShortleafDatabase\]/,
    );
    const plain = new Database(dir.file('plain.db'));
    plain.exec('CREATE TABLE notes (body TEXT)');
    plain.close();
    const p = await shortleaf(['restore', '--data', dir.file('p'), '--from', dir.file('plain.db')]);
    assert.equal(p.code, 1);
    assert.match(
      p.stderr,
      /plain\.db is not a backup this version can restore: .*not a Shortleaf one .*\[notShortleafDatabase\]/,
    );
    // A backup whose certificates table has a damaged page header fails SQLite's checks.
    const torn = dir.file('torn.db');
    copyFileSync(backupFile, torn);
    const source = new Database(torn, { readonly: true });
    const rootPage = source
      .prepare("SELECT rootpage FROM sqlite_master WHERE name = 'certificates'")
      .pluck()
      .get() as number;
    source.close();
    const bytes = readFileSync(torn);
    const pageSize = bytes.readUInt16BE(16) === 1 ? 65536 : bytes.readUInt16BE(16);
    for (let i = (rootPage - 1) * pageSize; i < (rootPage - 1) * pageSize + 12; i++) bytes[i] = bytes[i]! ^ 0x5a;
    writeFileSync(torn, bytes);
    const t = await shortleaf(['restore', '--data', dir.file('t'), '--from', torn]);
    assert.equal(t.code, 1, t.stdout);
    assert.match(t.stderr, /\[notShortleafDatabase\]/);
    for (const d of ['g', 'p', 't']) {
      assert.ok(!existsSync(databasePath(dir.file(d))), `no database in ${d}`);
      assert.deepEqual(
        readdirSync(dir.file(d)).filter((n) => n.includes('.db')),
        [],
        `no temporary left in ${d}`,
      );
    }
  });

  it('the restored CA serves: no serial collides with the original, and its CRL number is above any the original published', async () => {
    const r = await shortleafOk(['restore', '--data', restored, '--from', backupFile]);
    assert.match(r.stdout, /not the passphrase/);
    assert.equal(statSync(databasePath(restored)).mode & 0o777, 0o600);
    assert.equal(statSync(restored).mode & 0o777, 0o700);
    // The backup holds the sealed keys, not the passphrase: the operator brings that along.
    copyFileSync(join(original, 'password'), join(restored, 'password'));
    chmodSync(join(restored, 'password'), 0o600);
    const server = await startServer({ data: restored });
    servers.push(server);

    const crl = await servedCrlNumber(server);
    assert.ok(crl > originalMaxCrl, `restored CRL number ${crl} > ${originalMaxCrl}, the original's latest`);
    assert.ok(crl > backupMaxCrl);

    const fresh: Issued[] = [];
    for (let i = 0; i < 8; i++) fresh.push(await issue(server));
    const all = [...beforeBackup, ...afterBackupOnOriginal, ...fresh].map((c) => c.serial);
    assert.equal(new Set(all).size, all.length, 'every serial, on either CA, is unique');
    const originalSerials = new Set(afterBackupOnOriginal.map((c) => c.serial));
    for (const c of fresh) assert.ok(!originalSerials.has(c.serial));

    // A revocation on the restored CA publishes a still higher number.
    await shortleafOk(['revoke', fresh[0]!.serial, '--reason', 'superseded', '--data', restored]);
    await pollUntil(
      'a newer CRL on the restored CA',
      async () => ((await servedCrlNumber(server)) > crl ? true : undefined),
      { timeoutMs: 15_000, intervalMs: 200 },
    );
  });

  it('shortleaf audit lists issue, revoke and restore entries, filtered by action and time, as text or JSON lines', async () => {
    const text = await shortleafOk(['audit', '--data', restored]);
    const lines = text.stdout.trim().split('\n');
    assert.equal(lines[0], 'AT\tACTION\tACTOR\tSERIAL\tDETAIL');
    assert.ok(lines.some((l) => l.split('\t')[1] === 'restore'));

    const json = (out: string) =>
      out
        .trim()
        .split('\n')
        .filter(Boolean)
        .map(
          (l) =>
            JSON.parse(l) as {
              at: string;
              action: string;
              actor: string;
              serial: string | null;
              detail: Record<string, unknown>;
            },
        );
    const restores = json((await shortleafOk(['audit', '--data', restored, '--action', 'restore', '--json'])).stdout);
    assert.equal(restores.length, 1);
    assert.match(String(restores[0]!.detail.from), /shortleaf-backup\.db$/);
    assert.ok(BigInt(String(restores[0]!.detail.crlNumberFloor)) > originalMaxCrl);

    const issues = json((await shortleafOk(['audit', '--data', original, '--action', 'issue', '--json'])).stdout);
    const issuedSerials = new Set(issues.map((e) => e.serial));
    for (const c of [...beforeBackup, ...afterBackupOnOriginal])
      assert.ok(issuedSerials.has(c.serial), `audit lists the issue of ${c.serial}`);
    assert.ok(issues.every((e) => e.action === 'issue' && e.actor.length > 0 && Array.isArray(e.detail.names)));

    const revokes = json((await shortleafOk(['audit', '--data', original, '--action', 'revoke', '--json'])).stdout);
    assert.deepEqual(
      revokes.map((e) => [e.serial, e.detail.reason]),
      [[afterBackupOnOriginal[0]!.serial, 'superseded']],
    );

    // --since: nothing in the future window of one second ago... only what the last second wrote.
    await new Promise((r) => setTimeout(r, 1100));
    assert.deepEqual(json((await shortleafOk(['audit', '--data', original, '--since', '1s', '--json'])).stdout), []);
    assert.ok(
      json((await shortleafOk(['audit', '--data', original, '--since', '1h', '--json'])).stdout).length >=
        issues.length + revokes.length,
    );

    const bad = await shortleaf(['audit', '--data', original, '--action', 'sign']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--action must be one of issue, renew, revoke, restore/);
  });
});
