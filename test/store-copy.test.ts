// `shortleaf store copy` (issue 14: "a user who outgrows one machine must not have to start a new
// CA"): a SQLite CA that issued through tokens, renewed over mutual TLS, ordered through ACME with
// an external account binding (lego, http-01), revoked and published CRLs is copied into a real
// PostgreSQL database; row counts, certificate DER hashes and CRL numbers match; `serve
// --database` on the copy answers OCSP for the old certificates, issues new ones and keeps CRL
// numbers growing. The copy is refused while a server holds the directory and for a database that
// is not empty, both times with nothing written.
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openStore, type Store } from '@shortleaf/store';
import { testDatabaseUrl } from '@shortleaf/store/postgres-testing';
import { legoRun } from './helpers/acme-clients.js';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { tableCounts, withStore } from './helpers/data.js';
import { startDevCa, type DevCa, type IssuedLeaf } from './helpers/dev-ca.js';
import { request } from './helpers/http.js';
import { openssl } from './helpers/openssl.js';
import { crlInfo, ocsp, serialOf } from './helpers/revocation.js';
import { freePort, pollUntil, startServer } from './helpers/server.js';

const ACME_NAME = 'copy.acme.test';

/** What the test compares on both sides: counts per table, DER hash per serial, CRL numbers. */
interface Facts {
  counts: Record<string, number>;
  hashes: Map<string, string>;
  crlNumbers: Map<string, bigint>;
}

async function factsOf(store: Pick<Store, 'listCertificates' | 'listIssuers' | 'revocations'>) {
  const hashes = new Map<string, string>();
  for (const c of await store.listCertificates())
    if (c.der !== null) hashes.set(c.serial, createHash('sha256').update(c.der).digest('hex'));
  const crlNumbers = new Map<string, bigint>();
  for (const issuer of await store.listIssuers()) {
    const crl = await store.revocations.latestCrl(issuer.id);
    if (crl !== null) crlNumbers.set(issuer.name, crl.number);
  }
  return { hashes, crlNumbers };
}

async function postgresFacts(url: string): Promise<Facts> {
  const store = await openStore({ engine: 'postgres', url });
  try {
    const { schema_migrations: _, ...counts } = await store.counts();
    return { counts, ...(await factsOf(store)) };
  } finally {
    await store.close();
  }
}

async function sqliteFacts(data: string): Promise<Facts> {
  const { schema_migrations: _, ...counts } = await tableCounts(data);
  return { counts, ...(await withStore(data, factsOf)) };
}

/** The CRL a server publishes for the active intermediate, parsed by OpenSSL. */
async function servedCrl(ca: DevCa) {
  const res = await request(`${ca.server.statusUrl}/crl`);
  assert.equal(res.status, 200);
  return crlInfo(new Uint8Array(res.body));
}

async function ocspStatus(ca: DevCa, leaf: string): Promise<string | undefined> {
  const r = await ocsp([
    '-issuer',
    ca.intermediates,
    '-cert',
    leaf,
    '-url',
    `${ca.server.statusUrl}/ocsp`,
    '-CAfile',
    ca.roots,
  ]);
  assert.ok(r.verified, r.output);
  return r.single(leaf)?.status;
}

test('store copy moves a SQLite CA into PostgreSQL, and serve --database carries on from it', async (t) => {
  const url = await testDatabaseUrl(t);
  const dir = tempDir();
  t.after(() => dir.remove());
  const config = dir.file('config.json');
  const httpPort = await freePort();
  writeFileSync(config, JSON.stringify({ acme: { validation: { httpPort, hosts: { [ACME_NAME]: '127.0.0.1' } } } }));
  let eab = { kid: '', hmac: '' };
  const ca = await startDevCa(dir.path, {
    beforeServe: async (data) => {
      await shortleafOk(['provisioner', 'add', 'eab', '--type', 'acme', '--require-eab', '--data', data]);
      const out = (await shortleafOk(['acme', 'eab', 'add', '--provisioner', 'eab', '--data', data])).stdout;
      eab = { kid: /^kid: (\S+)$/m.exec(out)![1]!, hmac: /^hmac: (\S+)$/m.exec(out)![1]! };
    },
    serve: { args: ['--config', config] },
  });
  t.after(() => ca.server.stop());
  const data = ca.data;

  // ---- a SQLite CA with a history ----------------------------------------------------------
  const kept = await ca.issue('kept.copy.test', 'kept');
  const revoked = await ca.issue('revoked.copy.test', 'revoked');
  // A renewal over mutual TLS: the new certificate records the one it came from.
  await shortleafOk(['renew', '--ca', ca.server.publicUrl, '--root', ca.roots, '--cert', kept.cert, '--key', kept.key]);
  const renewed: IssuedLeaf = { ...kept, leaf: dir.file('kept-renewed-leaf.pem'), serial: '' };
  await openssl(['x509', '-in', kept.cert, '-out', renewed.leaf]);
  renewed.serial = serialOf(renewed.leaf);
  assert.notEqual(renewed.serial, kept.serial);
  const acme = await legoRun({
    directory: `${ca.server.publicUrl}/acme/eab/directory`,
    caBundle: join(data, 'offline-root', 'root.crt'),
    workDir: dir.file('lego'),
    domains: [ACME_NAME],
    email: 'ops@copy.test',
    challenge: { http: { port: httpPort } },
    eab,
  });
  await shortleafOk(['revoke', revoked.serial, '--reason', 'keyCompromise', '--data', data]);
  const crlBefore = await pollUntil(
    'the SQLite CA publishes a CRL with the revocation',
    async () => {
      const crl = await servedCrl(ca);
      return crl.entries.has(revoked.serial) ? crl : undefined;
    },
    { timeoutMs: 20_000 },
  );

  // ---- refused while serve holds the directory ----------------------------------------------
  const held = await shortleaf(['store', 'copy', '--from-data', data, '--to', url]);
  assert.equal(held.code, 1, held.stderr);
  assert.match(held.stderr, /store copy refused: another shortleaf serve \(pid \d+/);
  assert.equal((await postgresFacts(url)).counts.issuers ?? 0, 0, 'nothing copied while the server ran');

  await ca.server.stop();
  const source = await sqliteFacts(data);
  assert.ok(source.counts.acme_orders! >= 1 && source.counts.acme_eab_keys! >= 1, JSON.stringify(source.counts));
  assert.ok(source.counts.revocations! >= 1 && source.counts.crls! >= 1);
  assert.equal(source.crlNumbers.get('primary'), crlBefore.number);

  // ---- the copy ---------------------------------------------------------------------------
  const copy = await shortleafOk(['store', 'copy', '--from-data', data, '--to', url]);
  assert.match(copy.stdout, new RegExp(`certificates: ${source.hashes.size}, each DER's SHA-256 equal by serial`));
  assert.match(copy.stdout, new RegExp(`CRL numbers: +primary \\d+ \\(latest ${crlBefore.number}\\)`));
  assert.match(copy.stdout, /the active intermediate primary unseals on PostgreSQL with the same passphrase/);
  const rows = Object.values(source.counts).reduce((a, b) => a + b, 0);
  assert.match(copy.stdout, new RegExp(`tables: +${Object.keys(source.counts).length}, ${rows} rows`));

  const target = await postgresFacts(url);
  assert.deepEqual(target.counts, source.counts, 'row counts per table');
  assert.deepEqual(target.hashes, source.hashes, 'certificate DER hashes by serial');
  assert.deepEqual(target.crlNumbers, source.crlNumbers, 'latest CRL number per intermediate');
  assert.deepEqual(await sqliteFacts(data), source, 'the SQLite directory is left as it was');

  // ---- refused for a database that is not empty ----------------------------------------------
  const again = await shortleaf(['store', 'copy', '--from-data', data, '--to', url]);
  assert.equal(again.code, 1, again.stderr);
  assert.match(
    again.stderr,
    /the target database is not empty \(rows already in .*issuers 1.*wrote nothing \[conflict\]/,
  );
  assert.deepEqual((await postgresFacts(url)).counts, target.counts, 'nothing written by the refusal');

  // ---- serve --database on the copy ----------------------------------------------------------
  ca.server = await startServer({ data, args: ['--config', config, '--database', url] });
  assert.ok(
    ca.server.logs().some((l) => l.event === 'sqlite_database_ignored'),
    'the server says it runs on PostgreSQL, not on the SQLite database beside it',
  );
  assert.equal(await ocspStatus(ca, revoked.leaf), 'revoked');
  assert.equal(await ocspStatus(ca, renewed.leaf), 'good');
  assert.equal(await ocspStatus(ca, acme.leaf), 'good');
  assert.equal(
    new X509Certificate(readFileSync(acme.leaf)).subjectAltName,
    `DNS:${ACME_NAME}`,
    'the ACME certificate is the one the copy knows',
  );
  const fresh = await ca.issue('fresh.copy.test', 'fresh');
  assert.equal(await ocspStatus(ca, fresh.leaf), 'good');
  await shortleafOk(['revoke', fresh.serial, '--reason', 'superseded', '--database', url]);
  const crlAfter = await pollUntil(
    'the copy publishes a CRL with the new revocation',
    async () => {
      const crl = await servedCrl(ca);
      return crl.entries.has(fresh.serial) ? crl : undefined;
    },
    { timeoutMs: 20_000 },
  );
  assert.ok(crlAfter.number > crlBefore.number, `CRL number ${crlAfter.number} after ${crlBefore.number}`);
  assert.ok(crlAfter.entries.has(revoked.serial), 'the copied revocation stays on the CRL');
  const audit = await shortleafOk(['audit', '--database', url, '--action', 'revoke', '--json']);
  assert.deepEqual(
    audit.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { serial: string }).serial)
      .filter((s) => s === revoked.serial || s === fresh.serial),
    [revoked.serial, fresh.serial],
    'the audit log carries on after the copied entries',
  );
});
