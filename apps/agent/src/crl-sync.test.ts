import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCrl, encodePem, type CrlEntry } from '@shortleaf/pki';
import { makeCa as makeCaAt, makeLeaf as makeLeafAt, type Ca } from './test-fixtures.js';
import { CrlSyncError, createCrlSync, type CrlSyncErrorCode, type CrlSyncOptions } from './crl-sync.js';

const NOW = new Date('2030-01-01T00:00:00Z');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const at = (ms: number): Date => new Date(NOW.getTime() + ms);

const makeCa = (name: string, parent?: Ca): Ca => makeCaAt(name, parent, NOW);
const makeLeaf = (ca: Ca, name: string) => makeLeafAt(ca, name, { now: NOW, lifetimeMs: DAY });
const root = makeCa('Test Root');
const int = makeCa('Test Intermediate', root);
/** Same name as `int`, another key: only the signature tells them apart. */
const impostor = makeCa('Test Intermediate', root);
const stranger = makeCa('Some Other Root');
const good = makeLeaf(int, 'good.test');
const revoked = makeLeaf(int, 'revoked.test');
const ENTRIES: CrlEntry[] = [{ serial: revoked.serial, revokedAt: at(-HOUR), reason: 'keyCompromise' }];

/** The intermediate's CRL (with the IDP leaves point at) or the root's (without), as the server builds them. */
function crl(ca: Ca, number: bigint, patch: { entries?: CrlEntry[]; nextUpdate?: Date } = {}): Uint8Array {
  return buildCrl({
    issuer: ca.info,
    number,
    thisUpdate: at(-MINUTE),
    nextUpdate: patch.nextUpdate ?? at(DAY),
    distributionPoint: ca === root || ca === stranger ? null : 'http://status.test/crl',
    entries: patch.entries ?? (ca === root ? [] : ENTRIES),
  });
}

const flip = (der: Uint8Array, at: number): Uint8Array => {
  const copy = new Uint8Array(der);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
};

/** A status listener stand-in: serves bodies with ETag and Last-Modified, and counts conditional hits. */
class CrlServer {
  readonly bodies = new Map<string, Uint8Array | string>();
  requests = 0;
  notModified = 0;
  private readonly server: Server = createServer((req, res) => {
    this.requests++;
    const body = this.bodies.get(req.url ?? '');
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
    res.setHeader('etag', etag);
    res.setHeader('last-modified', NOW.toUTCString());
    if (req.headers['if-none-match'] === etag) {
      this.notModified++;
      res.writeHead(304).end();
      return;
    }
    res
      .writeHead(200, { 'content-type': typeof body === 'string' ? 'application/x-pem-file' : 'application/pkix-crl' })
      .end(body);
  });

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const base = mkdtempSync(join(tmpdir(), 'agent-crl-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A server holding the intermediate's CRL at /crl and the root's at /root.crl, and a sync of both into a fresh folder. */
async function setup(opts: { intNumber?: bigint; rootNumber?: bigint } = {}) {
  const server = await new CrlServer().start();
  cleanups.push(() => server.close());
  server.bodies.set('/crl', crl(int, opts.intNumber ?? 42n));
  server.bodies.set('/root.crl', crl(root, opts.rootNumber ?? 7n));
  const dir = join(base, `case-${n++}`);
  mkdirSync(dir);
  const clock = { now: NOW };
  const options: CrlSyncOptions = {
    sources: [{ url: server.url('/crl') }, { url: server.url('/root.crl') }],
    caCertificates: [root.der, int.der],
    out: join(dir, 'crl.pem'),
    now: () => clock.now,
    timeoutMs: 2_000,
  };
  return { server, dir, clock, options, out: options.out, sync: createCrlSync(options) };
}

/** What the server serves at `path`, as the bundle should hold it. */
const served = (server: CrlServer, path: string): string =>
  encodePem('X509 CRL', server.bodies.get(path) as Uint8Array);

async function assertRefused(
  promise: Promise<unknown>,
  codes: CrlSyncErrorCode | CrlSyncErrorCode[],
  message?: RegExp,
): Promise<CrlSyncError> {
  const err = await promise.then(
    () => assert.fail('the sync should have been refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CrlSyncError, `expected a CrlSyncError, got ${String(err)}`);
  assert.ok(([] as CrlSyncErrorCode[]).concat(codes).includes(err.code), `code ${err.code}: ${err.message}`);
  if (message !== undefined) assert.match(err.message, message);
  return err;
}

function openssl(dir: string, args: string[]): { ok: boolean; output: string } {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.error !== undefined) throw r.error;
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

describe('createCrlSync', () => {
  it('writes a PEM bundle of both CRLs, in source order, that OpenSSL reads and enforces', async () => {
    const { sync, out, dir, server } = await setup();
    const result = await sync.sync();
    assert.equal(result.changed, true);
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(
      result.crls.map((c) => ({
        url: c.url,
        number: c.number,
        entries: c.entries,
        issuer: c.issuer,
        nextUpdate: c.nextUpdate.toISOString(),
      })),
      [
        {
          url: server.url('/crl'),
          number: 42n,
          entries: 1,
          issuer: 'O=Shortleaf Test, CN=Test Intermediate',
          nextUpdate: at(DAY).toISOString(),
        },
        {
          url: server.url('/root.crl'),
          number: 7n,
          entries: 0,
          issuer: 'O=Shortleaf Test, CN=Test Root',
          nextUpdate: at(DAY).toISOString(),
        },
      ],
    );
    assert.equal(readFileSync(out, 'latin1'), served(server, '/crl') + served(server, '/root.crl'));
    assert.equal(statSync(out).mode & 0o777, 0o644);
    assert.equal(sync.state().sources[0]?.number, 42n);

    const text = openssl(dir, ['crl', '-in', out, '-noout', '-text']);
    assert.ok(text.ok, text.output);
    assert.match(text.output, /Issuer: O = Shortleaf Test, CN = Test Intermediate\n/);
    assert.match(text.output, /X509v3 CRL Number: *\n\s+42\n/);
    const all = openssl(dir, ['storeutl', '-noout', '-text', '-crls', out]);
    assert.ok(all.ok, all.output);
    assert.match(all.output, /Total found: 2/);
    assert.match(
      all.output,
      /0: CRL\n[\s\S]*Issuer: O=Shortleaf Test, CN=Test Intermediate\n[\s\S]*1: CRL\n[\s\S]*Issuer: O=Shortleaf Test, CN=Test Root\n/,
    );

    // What a proxy does with it: -crl_check_all needs both CRLs, and the revoked leaf is refused.
    writeFileSync(join(dir, 'root.pem'), root.pem);
    writeFileSync(join(dir, 'int.pem'), int.pem);
    writeFileSync(join(dir, 'good.pem'), good.pem);
    writeFileSync(join(dir, 'revoked.pem'), revoked.pem);
    const verify = (leaf: string) =>
      openssl(dir, [
        'verify',
        '-attime',
        String(NOW.getTime() / 1000),
        '-CAfile',
        'root.pem',
        '-untrusted',
        'int.pem',
        '-crl_check_all',
        '-CRLfile',
        out,
        leaf,
      ]);
    const ok = verify('good.pem');
    assert.ok(ok.ok, ok.output);
    assert.match(verify('revoked.pem').output, /error 23 at 0 depth lookup: certificate revoked/);
  });

  it('asks conditionally the next time and keeps the file as it is on 304', async () => {
    const { sync, out, server } = await setup();
    await sync.sync();
    const before = { bytes: readFileSync(out), ino: statSync(out).ino };
    const result = await sync.sync();
    assert.equal(result.changed, false);
    assert.equal(server.notModified, 2);
    assert.equal(server.requests, 4);
    assert.deepEqual(
      result.crls.map((c) => c.number),
      [42n, 7n],
    );
    assert.deepEqual({ bytes: readFileSync(out), ino: statSync(out).ino }, before);
  });

  it('replaces the bundle with a newer CRL, and rewrites a bundle that went missing', async () => {
    const { sync, out, server } = await setup();
    await sync.sync();
    server.bodies.set('/crl', crl(int, 43n, { entries: [] }));
    const result = await sync.sync();
    assert.equal(result.changed, true);
    assert.deepEqual(
      result.crls.map((c) => [c.number, c.entries]),
      [
        [43n, 0],
        [7n, 0],
      ],
    );
    assert.equal(server.notModified, 1, 'the root CRL came back 304');
    assert.equal(readFileSync(out, 'latin1'), served(server, '/crl') + served(server, '/root.crl'));

    rmSync(out);
    const again = await sync.sync();
    assert.equal(again.changed, true);
    assert.equal(server.notModified, 3);
    assert.match(readFileSync(out, 'latin1'), /BEGIN X509 CRL[\s\S]*BEGIN X509 CRL/);
  });

  it('accepts a PEM body as well as DER', async () => {
    const { sync, server, out } = await setup();
    const der = crl(int, 42n);
    server.bodies.set('/crl', encodePem('X509 CRL', der));
    await sync.sync();
    assert.ok(readFileSync(out, 'latin1').startsWith(encodePem('X509 CRL', der)));
  });

  it('refuses an older CRL, or the same number with other bytes, and leaves the file byte for byte', async () => {
    const { sync, out, server, options } = await setup();
    await sync.sync();
    const before = readFileSync(out);
    server.bodies.set('/crl', crl(int, 41n));
    await assertRefused(
      sync.sync(),
      'notNewer',
      /\/crl: CRL number 41 from O=Shortleaf Test, CN=Test Intermediate is lower than the 42 already published/,
    );
    server.bodies.set('/crl', crl(int, 42n, { entries: [] }));
    await assertRefused(sync.sync(), 'notNewer', /number 42 .* is the same as, with different content, the 42/);
    assert.deepEqual(readFileSync(out), before);

    // A restarted agent takes the baseline from the file it wrote.
    server.bodies.set('/crl', crl(int, 41n));
    await assertRefused(createCrlSync(options).sync(), 'notNewer');
    assert.deepEqual(readFileSync(out), before);
  });

  it('refuses a CRL with one byte flipped, in the signature or in the signed part, and leaves the file', async () => {
    const { sync, out, server } = await setup();
    await sync.sync();
    const before = readFileSync(out);
    const next = crl(int, 43n);
    server.bodies.set('/crl', flip(next, next.length - 3));
    await assertRefused(sync.sync(), ['badSignature', 'badCrl'], /\/crl: /);
    // Inside the first revoked serial: still parses, no longer verifies.
    const serial = Buffer.from(next).indexOf(Buffer.from(revoked.serial.slice(-8), 'hex'));
    assert.ok(serial > 0);
    server.bodies.set('/crl', flip(next, serial));
    await assertRefused(sync.sync(), 'badSignature', /not signed by any of the configured CA certificates/);
    // Anywhere in the TBS: refused one way or the other.
    for (let i = 4; i < 60; i += 7) {
      server.bodies.set('/crl', flip(next, i));
      await assertRefused(sync.sync(), ['badSignature', 'badCrl']);
    }
    server.bodies.set('/crl', 'not a CRL');
    await assertRefused(sync.sync(), 'badCrl', /the response is not a CRL/);
    assert.deepEqual(readFileSync(out), before);
    server.bodies.set('/crl', next);
    assert.equal((await sync.sync()).changed, true);
  });

  it('refuses a CRL signed by an unknown CA, or by another key under the same name', async () => {
    const { sync, out, server } = await setup();
    await sync.sync();
    const before = readFileSync(out);
    server.bodies.set('/crl', crl(impostor, 100n));
    await assertRefused(sync.sync(), 'badSignature');
    server.bodies.set('/crl', crl(stranger, 100n));
    await assertRefused(sync.sync(), 'badSignature');
    assert.deepEqual(readFileSync(out), before);
  });

  it('refuses an expired CRL, fetched or kept from a 304', async () => {
    const { sync, out, server, clock } = await setup();
    await sync.sync();
    const before = readFileSync(out);
    server.bodies.set('/crl', crl(int, 43n, { nextUpdate: at(HOUR) }));
    clock.now = at(2 * HOUR);
    await assertRefused(sync.sync(), 'stale', /\/crl: the CRL's nextUpdate 2030-01-01T01:00:00.000Z has passed/);
    // The root's CRL came back 304, and the one kept from before expires too.
    clock.now = at(DAY);
    server.bodies.set('/crl', crl(int, 44n, { nextUpdate: at(2 * DAY) }));
    const err = await assertRefused(sync.sync(), 'stale');
    assert.match(err.message, /\/root\.crl: /);
    assert.ok(server.notModified >= 1);
    assert.deepEqual(readFileSync(out), before);
  });

  it('writes nothing when one source fails, even if the other changed', async () => {
    const { sync, out, server } = await setup();
    await sync.sync();
    const before = readFileSync(out);
    server.bodies.set('/crl', crl(int, 43n));
    const rootCrl = server.bodies.get('/root.crl')!;
    server.bodies.delete('/root.crl');
    await assertRefused(sync.sync(), 'fetchFailed', /\/root\.crl: the server answered HTTP 404/);
    assert.deepEqual(readFileSync(out), before);
    server.bodies.set('/root.crl', rootCrl);
    const result = await sync.sync();
    assert.equal(result.changed, true);
    assert.deepEqual(
      result.crls.map((c) => c.number),
      [43n, 7n],
    );
  });

  it('treats an unreadable bundle as absent, with a warning, and replaces it', async () => {
    const { sync, out } = await setup();
    writeFileSync(out, 'garbage');
    const result = await sync.sync();
    assert.equal(result.changed, true);
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0]!, /cannot be read as a CRL bundle/);
    assert.match(readFileSync(out, 'latin1'), /^-----BEGIN X509 CRL-----/);
  });

  it('gives up on a server that does not answer within timeoutMs', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    });
    const { options } = await setup();
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/crl`;
    const sync = createCrlSync({ ...options, sources: [{ url }], timeoutMs: 300 });
    const started = Date.now();
    await assertRefused(sync.sync(), 'fetchFailed', /no complete answer within 300 ms/);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 1_500, `gave up after ${elapsed} ms`);
  });

  it('refuses unusable options at creation', () => {
    const options = {
      sources: [{ url: 'http://127.0.0.1/crl' }],
      caCertificates: [root.der],
      out: join(base, 'x.pem'),
      now: () => NOW,
    };
    assert.throws(() => createCrlSync({ ...options, sources: [] }), /at least one CRL source/);
    assert.throws(() => createCrlSync({ ...options, sources: [{ url: 'file:///etc/crl' }] }), /not http: or https:/);
    assert.throws(() => createCrlSync({ ...options, caCertificates: [] }), /no CA certificate/);
  });
});
