// Several `shortleaf serve` instances on one PostgreSQL database, as an operator runs them behind a
// load balancer: one `init` into the database, then N identical instances sharing one data folder
// (the development root, passphrase file and provisioner keys that `init` wrote; the instances only
// read it, and nothing in it is locked), each on its own free ports. Plus the small clients the
// high-availability tests share: tokens, REST sign and revoke, OCSP and CRL per instance, and the
// serials the database holds.
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { revokeAudience } from '@shortleaf/client';
import { testDatabaseUrl } from '@shortleaf/store/postgres-testing';
import { crypto as acmeCrypto } from 'acme-client';
import { shortleafOk, tempDir } from './cli.js';
import { request, type HttpResult } from './http.js';
import { openssl } from './openssl.js';
import { crlInfo, normalizeSerial, ocsp, type CrlInfo, type OcspResult } from './revocation.js';
import { freePort, pollUntil, startServer, type RunningServer } from './server.js';
import { jose, mintToken } from './workspace.js';

export interface ClusterOptions {
  instances: number;
  /** The database to init and serve from; default a fresh one on the run's shared server (testDatabaseUrl). */
  databaseUrl?: string;
  /** False when the database already holds a CA (another cluster's, or one a test made): skip `init`. */
  init?: boolean;
  /** Environment for every instance (and `init`), e.g. SHORTLEAF_PASSWORD. */
  env?: Record<string, string | undefined>;
  /** Extra `serve` arguments for every instance (not --config: pass `config` instead). */
  args?: readonly string[];
  /** Keys merged into the config file every instance reads (beside `publicUrl`). */
  config?: Record<string, unknown>;
  /**
   * The one URL clients use, as a load balancer would answer to it: token audiences and the HTTPS
   * certificate's names derive from it, so a token minted for it is accepted by every instance.
   * Default https://localhost:PORT on a port nobody listens on (tests then talk to each instance).
   */
  publicUrl?: string;
  /** Runs after `init`, before any instance starts (to add provisioners with `--database`). */
  beforeServe?: (where: { dataDir: string; databaseUrl: string }) => Promise<void>;
  /** How long one instance may take to log `listening` (default 60 s: the database may be busy). */
  startTimeoutMs?: number;
}

export interface Cluster {
  databaseUrl: string;
  /** The shared data folder: offline-root/, password, provisioners/admin.jwk. */
  dataDir: string;
  /** A scratch folder of the test's own, removed at the end. */
  dir: string;
  publicUrl: string;
  /** The config file every instance reads (`publicUrl` and the `config` option): pass it to an instance started by hand. */
  configFile: string;
  /** The running instances, by index; `restart(i)` replaces entry i. */
  instances: RunningServer[];
  /** The development root's certificate (trust anchor for HTTPS, OCSP and CRL checks). */
  rootCrt: string;
  /** The `admin` JWK provisioner's private key file. */
  adminKey: string;
  /** Starts one more instance on free ports and appends it to `instances`. */
  add(): Promise<RunningServer>;
  /**
   * Stops instance i if it still runs (SIGTERM), then starts it again on the same two ports, so a
   * load balancer's backend list stays right; replaces `instances[i]`.
   */
  restart(i: number): Promise<RunningServer>;
  /** Stops every instance (SIGTERM, SIGKILL after 10 s). Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * `shortleaf init --data DIR --database URL` once, then `instances` × `shortleaf serve --data DIR
 * --database URL` on free ports, started one after another (each resolves once it logs
 * `listening`). Everything is stopped and removed in `t.after`; the database is dropped by the
 * harness when the test ends.
 */
export async function startCluster(t: TestContext, opts: ClusterOptions): Promise<Cluster> {
  const scratch = tempDir();
  const instances: RunningServer[] = [];
  const ports: Array<{ api: number; status: number }> = [];
  t.after(async () => {
    try {
      await Promise.all(instances.map((s) => s.stop()));
    } finally {
      scratch.remove();
    }
  });
  const databaseUrl = opts.databaseUrl ?? (await testDatabaseUrl(t));
  const dataDir = scratch.file('data');
  const env = opts.env ?? {};
  if (opts.init !== false) await shortleafOk(['init', '--data', dataDir, '--database', databaseUrl], { env });
  await opts.beforeServe?.({ dataDir, databaseUrl });
  const publicUrl = opts.publicUrl ?? `https://localhost:${await freePort()}`;
  const configFile = scratch.file('cluster.json');
  writeFileSync(configFile, JSON.stringify({ ...(opts.config ?? {}), publicUrl }));

  const serve = (api: number | 0, status: number | 0) =>
    startServer({
      data: dataDir,
      noListenFlags: true,
      args: [
        '--database',
        databaseUrl,
        '--config',
        configFile,
        '--listen',
        `127.0.0.1:${api}`,
        '--status-listen',
        `127.0.0.1:${status}`,
        ...(opts.args ?? []),
      ],
      env,
      timeoutMs: opts.startTimeoutMs ?? 60_000,
    });

  const cluster: Cluster = {
    databaseUrl,
    dataDir,
    dir: scratch.path,
    publicUrl,
    configFile,
    instances,
    rootCrt: join(dataDir, 'offline-root', 'root.crt'),
    adminKey: join(dataDir, 'provisioners', 'admin.jwk'),
    async add() {
      const server = await serve(0, 0);
      instances.push(server);
      ports.push({ api: server.apiPort, status: server.statusPort });
      return server;
    },
    async restart(i) {
      const at = ports[i];
      if (at === undefined) throw new Error(`no instance ${i} to restart`);
      await instances[i]!.stop();
      const server = await serve(at.api, at.status);
      instances[i] = server;
      return server;
    },
    async stop() {
      await Promise.all(instances.map((s) => s.stop()));
    },
  };
  // Started together (each is mostly Node starting up), kept in a fixed order; every one that
  // started is stopped after the test even when another failed to.
  const started = await Promise.allSettled(Array.from({ length: opts.instances }, () => serve(0, 0)));
  for (const result of started) {
    if (result.status !== 'fulfilled') continue;
    instances.push(result.value);
    ports.push({ api: result.value.apiPort, status: result.value.statusPort });
  }
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return cluster;
}

/** The development root's certificate as PEM, to trust the instances' HTTPS and check what they sign. */
export const rootPem = (cluster: Cluster): string => readFileSync(cluster.rootCrt, 'utf8');

type PrivateJwk = Parameters<typeof mintToken>[0]['privateJwk'];

/** The `admin` provisioner's private JWK (the key file minus its `provisioner` member). */
export function adminJwk(cluster: Cluster): PrivateJwk {
  const { provisioner: _, ...jwk } = JSON.parse(readFileSync(cluster.adminKey, 'utf8')) as Record<string, unknown>;
  return jwk as PrivateJwk;
}

/** A one-time token from the `admin` provisioner for SUBJECT (and SANs), for the cluster's public URL. */
export function adminToken(cluster: Cluster, subject: string, sans: readonly string[] = [subject]): Promise<string> {
  return mintToken({ provisioner: 'admin', privateJwk: adminJwk(cluster), caUrl: cluster.publicUrl, subject, sans });
}

/** A fresh P-256 key and a CSR for NAME (CN and SAN), PEM; a new key each call. */
export async function newCsr(name: string): Promise<{ key: string; csr: string }> {
  const key = await acmeCrypto.createPrivateEcdsaKey();
  const [, csr] = await acmeCrypto.createCsr({ commonName: name, altNames: [name] }, key);
  return { key: key.toString(), csr: csr.toString() };
}

/** What POST /api/v1/sign returns with 201. */
export interface Issued {
  serial: string;
  certificate: string;
  chain: string;
}

/** POST /api/v1/sign to one instance on a new connection; whatever it answers. */
export function sign(
  cluster: Cluster,
  instance: Pick<RunningServer, 'api'>,
  body: { csr: string; token: string; notAfter?: string },
  opts: { timeoutMs?: number } = {},
): Promise<HttpResult> {
  return request(`${instance.api}/api/v1/sign`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ca: rootPem(cluster),
    servername: 'localhost',
    freshConnection: true,
    timeoutMs: opts.timeoutMs ?? 20_000,
  });
}

/** A 201's body, checked: the serial it names is the certificate's own. */
export function issuedOf(res: HttpResult): Issued {
  if (res.status !== 201) throw new Error(`expected 201, got HTTP ${res.status}: ${res.text.slice(0, 300)}`);
  const body = res.json<Issued>();
  const serial = normalizeSerial(new X509Certificate(body.certificate).serialNumber);
  if (serial !== normalizeSerial(body.serial))
    throw new Error(`the answer names serial ${body.serial} for a certificate with serial ${serial}`);
  return { ...body, serial };
}

/** Token + sign on one instance: a certificate for NAME, or a thrown error with the answer. */
export async function issue(cluster: Cluster, instance: RunningServer, name: string): Promise<Issued> {
  const { csr } = await newCsr(name);
  return issuedOf(await sign(cluster, instance, { csr, token: await adminToken(cluster, name) }));
}

/** Files for `openssl ocsp`: the leaf alone and its issuer, written into the cluster's folder. */
export function writeLeafFiles(cluster: Cluster, issued: Issued): { leaf: string; issuer: string } {
  const leaf = join(cluster.dir, `leaf-${issued.serial}.pem`);
  const issuer = join(cluster.dir, `issuer-${issued.serial}.pem`);
  writeFileSync(leaf, issued.certificate);
  writeFileSync(issuer, issued.chain);
  return { leaf, issuer };
}

/**
 * OCSP status of a leaf from one instance's responder (`openssl ocsp`, the response verified
 * against the root). Throws when the response does not verify or names no status for the leaf.
 */
export async function ocspStatus(
  cluster: Cluster,
  instance: RunningServer,
  files: { leaf: string; issuer: string },
): Promise<{ status: 'good' | 'revoked' | 'unknown'; result: OcspResult }> {
  const result = await ocsp([
    '-issuer',
    files.issuer,
    '-cert',
    files.leaf,
    '-url',
    `${instance.status}/ocsp`,
    '-CAfile',
    cluster.rootCrt,
    '-timeout',
    '5',
  ]);
  const single = result.single(files.leaf);
  if (!result.verified || single === null)
    throw new Error(`OCSP from ${instance.status} did not verify or named no status:\n${result.output}`);
  return { status: single.status, result };
}

/** One look at a status answer: when its bytes arrived (before any parsing) and what it says. */
export interface StatusLook<T> {
  arrivedAt: number;
  value: T;
}

/**
 * Polls one instance's OCSP responder for a leaf cheaply enough to time a revocation: the request
 * is built once (`openssl ocsp -reqout`), each look is one HTTP POST timed on arrival, and only an
 * answer whose bytes differ from the last one is judged by OpenSSL (`-respin`, verified against the
 * root), so a responder serving its pre-signed answer is re-read every few milliseconds.
 */
export async function ocspWatcher(
  cluster: Cluster,
  instance: RunningServer,
  files: { leaf: string; issuer: string },
): Promise<{ look(): Promise<StatusLook<'good' | 'revoked' | 'unknown'>> }> {
  const base = join(
    cluster.dir,
    `ocsp-${instance.statusPort}-${new X509Certificate(readFileSync(files.leaf)).serialNumber}`,
  );
  const reqFile = `${base}.req`;
  await openssl(['ocsp', '-issuer', files.issuer, '-cert', files.leaf, '-no_nonce', '-reqout', reqFile]);
  const body = readFileSync(reqFile);
  let last: { der: Buffer; status: 'good' | 'revoked' | 'unknown' } | undefined;
  return {
    async look() {
      const res = await request(`${instance.status}/ocsp`, {
        method: 'POST',
        headers: { 'content-type': 'application/ocsp-request' },
        body,
        freshConnection: true,
        timeoutMs: 5_000,
      });
      const arrivedAt = Date.now();
      if (res.status !== 200) throw new Error(`POST ${instance.status}/ocsp: HTTP ${res.status}`);
      if (last !== undefined && last.der.equals(res.body)) return { arrivedAt, value: last.status };
      writeFileSync(`${base}.resp`, res.body);
      const result = await ocsp([
        '-respin',
        `${base}.resp`,
        '-issuer',
        files.issuer,
        '-cert',
        files.leaf,
        '-CAfile',
        cluster.rootCrt,
        '-no_nonce',
      ]);
      const single = result.single(files.leaf);
      if (!result.verified || single === null)
        throw new Error(`OCSP from ${instance.status} did not verify or named no status:\n${result.output}`);
      last = { der: res.body, status: single.status };
      return { arrivedAt, value: single.status };
    },
  };
}

/** Polls one instance's CRL (PATH, default /crl) the same way: timed on arrival, parsed only when its bytes change. */
export function crlWatcher(
  instance: RunningServer,
  path = '/crl',
): { look(): Promise<StatusLook<CrlInfo & { der: Buffer }>> } {
  let last: (CrlInfo & { der: Buffer }) | undefined;
  return {
    async look() {
      const res = await request(`${instance.status}${path}`, { freshConnection: true, timeoutMs: 5_000 });
      const arrivedAt = Date.now();
      if (res.status !== 200)
        throw new Error(`GET ${instance.status}${path}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
      if (last === undefined || !last.der.equals(res.body))
        last = { ...(await crlInfo(new Uint8Array(res.body))), der: res.body };
      return { arrivedAt, value: last };
    },
  };
}

/**
 * Looks every `intervalMs` until `settled` accepts a look, for at most `timeoutMs`, and returns the
 * milliseconds from `since` to when that look's answer arrived: a bound is then judged on the
 * instance's delay, and a late answer is measured before it is refused.
 */
export async function msUntil<T>(
  what: string,
  watcher: { look(): Promise<StatusLook<T>> },
  settled: (value: T) => boolean,
  opts: { since: number; timeoutMs: number; intervalMs: number },
): Promise<number> {
  const at = await pollUntil(
    what,
    async () => {
      const look = await watcher.look();
      return settled(look.value) ? look.arrivedAt : undefined;
    },
    { timeoutMs: opts.timeoutMs, intervalMs: opts.intervalMs },
  );
  return at - opts.since;
}

/** GET PATH (default the active intermediate's CRL, /crl) from one instance's status listener, parsed by OpenSSL. */
export async function fetchCrl(instance: RunningServer, path = '/crl'): Promise<CrlInfo & { der: Buffer }> {
  const res = await request(`${instance.status}${path}`, { freshConnection: true, timeoutMs: 5_000 });
  if (res.status !== 200)
    throw new Error(`GET ${instance.status}${path}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
  return { ...(await crlInfo(new Uint8Array(res.body))), der: res.body };
}

/** POST /api/v1/revoke to one instance, authorised by an `admin` token whose subject is the serial. */
export async function revokeVia(
  cluster: Cluster,
  instance: RunningServer,
  serial: string,
  reason = 'superseded',
): Promise<HttpResult> {
  const token = await mintToken({
    provisioner: 'admin',
    privateJwk: adminJwk(cluster),
    caUrl: cluster.publicUrl,
    subject: serial,
    audience: revokeAudience(cluster.publicUrl),
  });
  return request(`${instance.api}/api/v1/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ serial, reason, token }),
    ca: rootPem(cluster),
    servername: 'localhost',
    freshConnection: true,
    timeoutMs: 20_000,
  });
}

/** One row of `shortleaf certs list --database URL`. */
export interface DatabaseCertificate {
  serial: string;
  /** valid, expired, undelivered (reserved, never stored), revoked:REASON. */
  status: string;
}

/** What the database holds, as the operator's `shortleaf certs list --database URL` prints it, by serial. */
export async function databaseCertificates(cluster: Cluster): Promise<Map<string, DatabaseCertificate>> {
  const r = await shortleafOk(['certs', 'list', '--database', cluster.databaseUrl]);
  const rows = new Map<string, DatabaseCertificate>();
  for (const line of r.stdout.split('\n').slice(1)) {
    const [serial, status] = line.split('\t');
    if (serial === undefined || status === undefined || serial === '') continue;
    rows.set(normalizeSerial(serial), { serial: normalizeSerial(serial), status });
  }
  return rows;
}

/** An ACME account key pair (ES256) and its public JWK. */
export interface AcmeAccountKey {
  privateKey: jose.CryptoKey;
  jwk: jose.JWK;
}

export async function newAccountKey(): Promise<AcmeAccountKey> {
  const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
  return { privateKey, jwk: await jose.exportJWK(publicKey) };
}

/** GET one instance's ACME directory (RFC 8555 §7.1.1): its URLs name that instance. */
export async function acmeDirectory(
  cluster: Cluster,
  instance: RunningServer,
  provisioner = 'acme',
): Promise<Record<string, string>> {
  const res = await request(`${instance.api}/acme/${provisioner}/directory`, {
    ca: rootPem(cluster),
    servername: 'localhost',
    freshConnection: true,
  });
  if (res.status !== 200) throw new Error(`ACME directory of ${instance.api}: HTTP ${res.status} ${res.text}`);
  return res.json<Record<string, string>>();
}

/** HEAD newNonce (RFC 8555 §7.2) on the instance the directory came from: its Replay-Nonce. */
export async function newNonce(cluster: Cluster, directory: Record<string, string>): Promise<string> {
  const res = await request(directory.newNonce!, {
    method: 'HEAD',
    ca: rootPem(cluster),
    servername: 'localhost',
    freshConnection: true,
  });
  const nonce = res.headers?.['replay-nonce'];
  if (nonce === undefined || nonce === '')
    throw new Error(`HEAD ${directory.newNonce}: no Replay-Nonce (HTTP ${res.status})`);
  return nonce;
}

/**
 * POSTs a JWS (RFC 8555 §6.2) signed by `key` to `url`, with this nonce; `kid` names an account,
 * else the key goes in as `jwk` (newAccount).
 */
export async function acmePost(
  cluster: Cluster,
  url: string,
  key: AcmeAccountKey,
  nonce: string,
  payload: unknown,
  opts: { kid?: string } = {},
): Promise<HttpResult> {
  const jws = await new jose.FlattenedSign(new TextEncoder().encode(payload === '' ? '' : JSON.stringify(payload)))
    .setProtectedHeader({
      alg: 'ES256',
      nonce,
      url,
      ...(opts.kid === undefined ? { jwk: key.jwk } : { kid: opts.kid }),
    })
    .sign(key.privateKey);
  return request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/jose+json' },
    body: JSON.stringify(jws),
    ca: rootPem(cluster),
    servername: 'localhost',
    freshConnection: true,
    timeoutMs: 20_000,
  });
}

/** An External Account Binding (RFC 8555 §7.3.4): the account's JWK, MACed (HS256) with the key `acme eab add` printed. */
export async function externalAccountBinding(
  eab: { kid: string; hmac: string },
  accountJwk: jose.JWK,
  newAccountUrl: string,
): Promise<jose.FlattenedJWS> {
  return new jose.FlattenedSign(new TextEncoder().encode(JSON.stringify(accountJwk)))
    .setProtectedHeader({ alg: 'HS256', kid: eab.kid, url: newAccountUrl })
    .sign(Buffer.from(eab.hmac, 'base64url'));
}
