// Real ACME clients for the end-to-end tests, run as a user runs them: certbot and lego obtain,
// renew and revoke; pebble-challtestsrv is the DNS server dns-01 is answered from; Pebble (Let's
// Encrypt's test server) is a reference server that proves the harness itself. Nothing here knows
// which server it talks to: each function takes a directory URL, a CA bundle, ports and a folder.
import type { ChildProcess } from 'node:child_process';
import { X509Certificate, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { join } from 'node:path';
import { run, track, type RunResult } from './cli.js';
import { request, type HttpResult } from './http.js';
import { openssl, splitCertificates } from './openssl.js';
import { normalizeSerial } from './revocation.js';
import { freePort, pollUntil } from './server.js';

/** One client command: account, order, validation (lego polls every 5 s), finalize, download. */
export const CLIENT_TIMEOUT_MS = 90_000;

export interface AcmeClientOptions {
  /** The ACME directory URL. */
  directory: string;
  /** PEM file of the roots the directory's HTTPS certificate chains to (no --no-verify-ssl, ever). */
  caBundle: string;
  /** This client's own folder: accounts, certificates, logs. */
  workDir: string;
  /** The names to order; the first names the certificate. */
  domains: string[];
}

/** What a client obtained, as files that later renewals do not overwrite. */
export interface ObtainedCertificate {
  /** The end-entity certificate alone. */
  leaf: string;
  /** The intermediates the server sent after it. */
  chain: string;
  key: string;
  serial: string;
  /** The DNS names in its subjectAltName. */
  dnsNames: string[];
  result: RunResult;
}

async function runClient(
  what: string,
  command: string,
  args: string[],
  env: Record<string, string>,
  logFile?: string,
): Promise<RunResult> {
  const r = await run(command, args, { env, timeoutMs: CLIENT_TIMEOUT_MS });
  if (r.code !== 0) {
    const log =
      logFile !== undefined && existsSync(logFile)
        ? readFileSync(logFile, 'utf8').split('\n').slice(-60).join('\n')
        : '';
    throw new Error(
      `${what} exited ${r.code ?? r.signal}\n$ ${command} ${args.join(' ')}\nstdout: ${r.stdout}\nstderr: ${r.stderr}${log ? `\nlog tail:\n${log}` : ''}`,
    );
  }
  return r;
}

function describeCertificate(leaf: string, chain: string, key: string, result: RunResult): ObtainedCertificate {
  const cert = new X509Certificate(readFileSync(leaf));
  const dnsNames = (cert.subjectAltName ?? '')
    .split(', ')
    .filter((n) => n.startsWith('DNS:'))
    .map((n) => n.slice(4));
  return { leaf, chain, key, serial: normalizeSerial(cert.serialNumber), dnsNames, result };
}

// ---- certbot ----------------------------------------------------------------------------------

export interface CertbotOptions extends AcmeClientOptions {
  /** The lineage name: files land in config/live/NAME. */
  certName: string;
  /** Where the standalone http-01 server listens (127.0.0.1), the port the server validates on. */
  httpPort: number;
  /** Registers without a contact if omitted. */
  email?: string;
  eab?: { kid: string; hmac: string };
}

const certbotDirs = (o: CertbotOptions) => [
  '--config-dir',
  join(o.workDir, 'config'),
  '--work-dir',
  join(o.workDir, 'work'),
  '--logs-dir',
  join(o.workDir, 'logs'),
];
const certbot = (what: string, o: CertbotOptions, args: string[]) =>
  runClient(
    what,
    'certbot',
    [...args, ...certbotDirs(o), '--non-interactive'],
    { REQUESTS_CA_BUNDLE: o.caBundle },
    join(o.workDir, 'logs', 'letsencrypt.log'),
  );

/** The lineage's current files, resolved past certbot's live/ symlinks so a renewal leaves them be. */
function certbotLineage(o: CertbotOptions, result: RunResult): ObtainedCertificate {
  const live = (name: string) => realpathSync(join(o.workDir, 'config', 'live', o.certName, name));
  return describeCertificate(live('cert.pem'), live('chain.pem'), live('privkey.pem'), result);
}

/**
 * `certbot certonly --standalone`: registers an account and obtains a certificate over http-01,
 * certbot serving the challenge on 127.0.0.1:httpPort.
 */
export async function certbotObtain(o: CertbotOptions): Promise<ObtainedCertificate> {
  mkdirSync(o.workDir, { recursive: true });
  const account = o.email === undefined ? ['--register-unsafely-without-email'] : ['-m', o.email];
  const eab = o.eab === undefined ? [] : ['--eab-kid', o.eab.kid, `--eab-hmac-key=${o.eab.hmac}`];
  const result = await certbot('certbot certonly', o, [
    'certonly',
    '--standalone',
    '--http-01-port',
    String(o.httpPort),
    '--http-01-address',
    '127.0.0.1',
    '--server',
    o.directory,
    '--cert-name',
    o.certName,
    ...o.domains.flatMap((d) => ['-d', d]),
    '--agree-tos',
    ...account,
    ...eab,
  ]);
  return certbotLineage(o, result);
}

/**
 * `certbot renew --force-renewal` for one lineage: a new order with the server, ports and
 * authenticator certonly stored in renewal/NAME.conf. Without --no-random-sleep-on-renew certbot
 * sleeps up to 8 minutes first whenever stdin is not a terminal.
 */
export async function certbotRenew(o: CertbotOptions): Promise<ObtainedCertificate> {
  const result = await certbot('certbot renew', o, [
    'renew',
    '--cert-name',
    o.certName,
    '--force-renewal',
    '--no-random-sleep-on-renew',
  ]);
  return certbotLineage(o, result);
}

/** certbot's revocation reasons, as its --reason flag spells them. */
export type CertbotReason =
  'unspecified' | 'keycompromise' | 'affiliationchanged' | 'superseded' | 'cessationofoperation';

/** `certbot revoke --cert-path`: revokes with the account key, keeping the files. */
export function certbotRevoke(
  o: CertbotOptions,
  certPath: string,
  reason: CertbotReason = 'unspecified',
): Promise<RunResult> {
  return certbot('certbot revoke', o, [
    'revoke',
    '--cert-path',
    certPath,
    '--reason',
    reason,
    '--no-delete-after-revoke',
    '--server',
    o.directory,
  ]);
}

// ---- lego ---------------------------------------------------------------------------------------

/** How lego proves control: its own http-01 or tls-alpn-01 server on 127.0.0.1, or a DNS TXT record. */
export type LegoChallenge =
  | { http: { port: number } }
  | { tls: { port: number } }
  /** `--dns exec`: EXEC_PATH runs `present|cleanup FQDN VALUE`; `resolver` is where lego looks the record up. */
  | { dns: { resolver: string; execPath: string } };

export interface LegoOptions extends AcmeClientOptions {
  challenge: LegoChallenge;
  /** lego 4.9.1 refuses to run without an account email. */
  email: string;
  eab?: { kid: string; hmac: string };
}

function legoArgs(o: LegoOptions): { args: string[]; env: Record<string, string> } {
  const c = o.challenge;
  const env: Record<string, string> = { LEGO_CA_CERTIFICATES: o.caBundle };
  let challenge: string[];
  if ('http' in c) challenge = ['--http', '--http.port', `127.0.0.1:${c.http.port}`];
  else if ('tls' in c) challenge = ['--tls', '--tls.port', `127.0.0.1:${c.tls.port}`];
  else {
    // --dns.disable-cp: without it lego also asks the zone's authoritative servers, found by an SOA
    // query that pebble-challtestsrv answers NOTIMP. With it, lego asks only --dns.resolvers.
    challenge = ['--dns', 'exec', '--dns.resolvers', c.dns.resolver, '--dns.disable-cp'];
    Object.assign(env, { EXEC_PATH: c.dns.execPath, EXEC_PROPAGATION_TIMEOUT: '30', EXEC_POLLING_INTERVAL: '1' });
  }
  const eab = o.eab === undefined ? [] : ['--eab', '--kid', o.eab.kid, `--hmac=${o.eab.hmac}`];
  return {
    args: [
      '--server',
      o.directory,
      '--path',
      o.workDir,
      '--accept-tos',
      '--email',
      o.email,
      ...eab,
      ...o.domains.flatMap((d) => ['-d', d]),
      ...challenge,
    ],
    env,
  };
}

/** Runs `lego GLOBAL-FLAGS COMMAND EXTRA` and returns what happened, success or not. */
export function legoCommand(
  o: LegoOptions,
  command: 'run' | 'renew' | 'revoke',
  extra: string[] = [],
): Promise<RunResult> {
  mkdirSync(o.workDir, { recursive: true });
  const { args, env } = legoArgs(o);
  return run('lego', [...args, command, ...extra], { env, timeoutMs: CLIENT_TIMEOUT_MS });
}

/** Copies lego's certificate files (the next renewal overwrites them) and splits the leaf out of the bundle. */
function legoSnapshot(o: LegoOptions, result: RunResult): ObtainedCertificate {
  const base = join(o.workDir, 'certificates', o.domains[0]!.replace('*', '_'));
  const [leafPem] = splitCertificates(readFileSync(`${base}.crt`, 'utf8'));
  if (leafPem === undefined) throw new Error(`lego wrote no certificate to ${base}.crt\n${result.stderr}`);
  const dir = join(o.workDir, 'snapshots', normalizeSerial(new X509Certificate(leafPem).serialNumber));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'leaf.pem'), leafPem);
  copyFileSync(`${base}.issuer.crt`, join(dir, 'chain.pem'));
  copyFileSync(`${base}.key`, join(dir, 'key.pem'));
  return describeCertificate(join(dir, 'leaf.pem'), join(dir, 'chain.pem'), join(dir, 'key.pem'), result);
}

async function legoOk(o: LegoOptions, command: 'run' | 'renew' | 'revoke', extra: string[] = []): Promise<RunResult> {
  const r = await legoCommand(o, command, extra);
  if (r.code !== 0)
    throw new Error(
      `lego ${command} exited ${r.code ?? r.signal}\n$ lego ${legoArgs(o).args.join(' ')} ${command} ${extra.join(' ')}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
    );
  return r;
}

/** `lego run`: registers (with EAB if given) and obtains a certificate for the domains. */
export async function legoRun(o: LegoOptions): Promise<ObtainedCertificate> {
  return legoSnapshot(o, await legoOk(o, 'run'));
}

/**
 * `lego renew --days 9999 --no-random-sleep`: renews now whatever the remaining lifetime (a
 * Shortleaf leaf lives hours, Pebble's five years). Without --no-random-sleep lego 4.9.1 sleeps
 * up to 8 minutes first whenever stdout is not a terminal.
 */
export async function legoRenew(o: LegoOptions): Promise<ObtainedCertificate> {
  return legoSnapshot(o, await legoOk(o, 'renew', ['--days', '9999', '--no-random-sleep']));
}

/** `lego revoke --keep --reason N`: revokes the current certificate with the account key (RFC 5280 reason code). */
export function legoRevoke(o: LegoOptions, reason = 0): Promise<RunResult> {
  return legoOk(o, 'revoke', ['--keep', '--reason', String(reason)]);
}

// ---- DNS: pebble-challtestsrv -------------------------------------------------------------------

/** A long-running helper process, ready once its output matches. */
interface Daemon {
  child: ChildProcess;
  match: RegExpMatchArray;
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s. Safe to call twice. */
  stop(): Promise<void>;
}

function startDaemon(
  command: string,
  args: string[],
  opts: { env?: Record<string, string>; ready: RegExp; timeoutMs?: number },
): Promise<Daemon> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const child = track(command, args, { ...(opts.env ? { env: opts.env } : {}) });
  child.stdin!.end();
  let output = '';
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      exit,
      new Promise<void>((resolve) => (timer = setTimeout(() => (child.kill('SIGKILL'), resolve()), 5_000))),
    ]);
    clearTimeout(timer);
    await exit;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not print ${opts.ready} within ${timeoutMs} ms\n${output}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      output += d.toString();
      const match = opts.ready.exec(output);
      if (match === null) return;
      clearTimeout(timer);
      resolve({ child, match, output: () => output, stop });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exit.then(() => {
      clearTimeout(timer);
      reject(new Error(`${command} exited before it was ready\n${output}`));
    });
  });
}

export interface ChallTestSrv {
  /** 127.0.0.1:PORT of its DNS server (UDP and TCP): A queries answer 127.0.0.1, no AAAA. */
  dnsAddress: string;
  managementUrl: string;
  setTxt(fqdn: string, value: string): Promise<void>;
  clearTxt(fqdn: string): Promise<void>;
  /** The TXT values its DNS server answers for a name, asked over DNS; [] for none. */
  resolveTxt(fqdn: string): Promise<string[]>;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts pebble-challtestsrv as a DNS server on loopback with its management API, and nothing
 * else (its http-01, https-01 and tls-alpn-01 responders are off). Ready once a TXT record set
 * through the API is answered over DNS.
 */
export async function startChallTestSrv(): Promise<ChallTestSrv> {
  const [dnsPort, managementPort] = [await freePort(), await freePort()];
  const daemon = await startDaemon(
    'pebble-challtestsrv',
    [
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-management',
      `127.0.0.1:${managementPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-defaultIPv4',
      '127.0.0.1',
      '-defaultIPv6',
      '',
    ],
    { ready: /Starting management server/ },
  );
  const managementUrl = `http://127.0.0.1:${managementPort}`;
  const post = async (path: string, body: Record<string, string>) => {
    const res = await request(`${managementUrl}${path}`, {
      method: 'POST',
      body: JSON.stringify(body),
      timeoutMs: 5_000,
    });
    if (res.status !== 200) throw new Error(`pebble-challtestsrv ${path}: HTTP ${res.status} ${res.text}`);
  };
  const resolver = new Resolver({ timeout: 1_000, tries: 2 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  const srv: ChallTestSrv = {
    dnsAddress: `127.0.0.1:${dnsPort}`,
    managementUrl,
    setTxt: (host, value) => post('/set-txt', { host, value }),
    clearTxt: (host) => post('/clear-txt', { host }),
    async resolveTxt(fqdn) {
      try {
        return (await resolver.resolveTxt(fqdn)).map((chunks) => chunks.join(''));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENODATA' || (err as NodeJS.ErrnoException).code === 'ENOTFOUND')
          return [];
        throw err;
      }
    },
    output: daemon.output,
    stop: daemon.stop,
  };
  try {
    await pollUntil(
      'pebble-challtestsrv to answer over its API and DNS',
      async () => {
        await srv.setTxt('ready.harness.test.', 'ready');
        return (await srv.resolveTxt('ready.harness.test')).includes('ready') ? true : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    await srv.clearTxt('ready.harness.test.');
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  return srv;
}

export interface DnsExecScript {
  /** The file to give lego as EXEC_PATH. */
  path: string;
  /** Every call lego made, in order. */
  calls(): Array<{ action: string; fqdn: string; value: string }>;
}

/**
 * Writes the script lego's `exec` DNS provider runs (`present|cleanup FQDN VALUE`): it sets or
 * clears the TXT record through pebble-challtestsrv's API and logs the call. `wrongValue`
 * publishes a value that is not the key authorization digest, for tests where validation must fail.
 */
export function writeDnsExecScript(
  path: string,
  managementUrl: string,
  opts: { wrongValue?: boolean } = {},
): DnsExecScript {
  const log = `${path}.calls`;
  writeFileSync(log, '');
  const value = opts.wrongValue ? 'not-$3' : '$3';
  writeFileSync(
    path,
    `#!/bin/sh
# lego --dns exec: $1 = present|cleanup, $2 = FQDN (with the final dot), $3 = TXT value.
set -eu
printf '%s %s %s\\n' "$1" "$2" "$3" >> '${log}'
case "$1" in
  present) path=set-txt; body="{\\"host\\":\\"$2\\",\\"value\\":\\"${value}\\"}" ;;
  cleanup) path=clear-txt; body="{\\"host\\":\\"$2\\"}" ;;
  *) exit 0 ;;
esac
exec curl -sS --fail --max-time 10 -X POST --data "$body" '${managementUrl}/'"$path"
`,
  );
  chmodSync(path, 0o755);
  return {
    path,
    calls: () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const [action = '', fqdn = '', value = ''] = l.split(' ');
          return { action, fqdn, value };
        }),
  };
}

// ---- Pebble -------------------------------------------------------------------------------------

export interface Pebble {
  directory: string;
  /** The CA file for its HTTPS (a throwaway CA made here: Debian ships no test certificates). */
  caBundle: string;
  managementUrl: string;
  /** The key id and HMAC key it accepts, when started with `requireEab`. */
  eab: { kid: string; hmac: string } | null;
  /** Fetches the root that signs what it issues (new on every start) into a file; returns its path. */
  root(): Promise<string>;
  /** Its management API's view of a certificate: Valid or Revoked, and the RFC 5280 reason code. */
  certStatus(serial: string): Promise<{ status: string; reason: number | null }>;
  output(): string;
  stop(): Promise<void>;
}

/** A CA and a localhost/127.0.0.1 server certificate for Pebble's HTTPS, made once per folder. */
async function pebbleTls(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const f = (name: string) => join(dir, name);
  if (!existsSync(f('tls.pem'))) {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    await openssl([
      'req',
      '-x509',
      ...ec,
      '-keyout',
      f('tls-ca.key'),
      '-out',
      f('tls-ca.pem'),
      '-subj',
      '/CN=Pebble HTTPS test CA',
      '-days',
      '2',
    ]);
    await openssl(['req', '-new', ...ec, '-keyout', f('tls.key'), '-out', f('tls.csr'), '-subj', '/CN=localhost']);
    writeFileSync(
      f('tls.ext'),
      'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
    );
    await openssl([
      'x509',
      '-req',
      '-in',
      f('tls.csr'),
      '-CA',
      f('tls-ca.pem'),
      '-CAkey',
      f('tls-ca.key'),
      '-set_serial',
      '1',
      '-days',
      '2',
      '-extfile',
      f('tls.ext'),
      '-out',
      f('tls.pem'),
    ]);
  }
  return { ca: f('tls-ca.pem'), cert: f('tls.pem'), key: f('tls.key') };
}

/**
 * Starts Pebble on free loopback ports. It validates http-01 on `httpPort` and tls-alpn-01 on
 * `tlsPort` and resolves names (A and TXT) through `dnsServer`, a pebble-challtestsrv. Nonces are
 * never rejected at random and authorizations never reused, so every order is validated afresh.
 */
export async function startPebble(opts: {
  dir: string;
  httpPort: number;
  tlsPort: number;
  dnsServer: string;
  requireEab?: boolean;
}): Promise<Pebble> {
  mkdirSync(opts.dir, { recursive: true });
  const tls = await pebbleTls(opts.dir);
  const [listen, management] = [await freePort(), await freePort()];
  const eab = opts.requireEab
    ? { kid: `kid-${randomBytes(4).toString('hex')}`, hmac: randomBytes(32).toString('base64url') }
    : null;
  const config = join(opts.dir, `pebble-${listen}.json`);
  writeFileSync(
    config,
    JSON.stringify(
      {
        pebble: {
          listenAddress: `127.0.0.1:${listen}`,
          managementListenAddress: `127.0.0.1:${management}`,
          certificate: tls.cert,
          privateKey: tls.key,
          httpPort: opts.httpPort,
          tlsPort: opts.tlsPort,
          ocspResponderURL: '',
          externalAccountBindingRequired: eab !== null,
          ...(eab ? { externalAccountMACKeys: { [eab.kid]: eab.hmac } } : {}),
        },
      },
      null,
      2,
    ),
  );
  const daemon = await startDaemon('pebble', ['-config', config, '-dnsserver', opts.dnsServer], {
    env: { PEBBLE_VA_NOSLEEP: '1', PEBBLE_VA_ALWAYS_VALID: '0', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
    ready: /ACME directory available at: (\S+)/,
  });
  const ca = readFileSync(tls.ca, 'utf8');
  const managementUrl = `https://127.0.0.1:${management}`;
  return {
    directory: daemon.match[1]!,
    caBundle: tls.ca,
    managementUrl,
    eab,
    async root() {
      const res = await request(`${managementUrl}/roots/0`, { ca });
      if (res.status !== 200) throw new Error(`pebble /roots/0: HTTP ${res.status} ${res.text}`);
      const file = join(opts.dir, `root-${listen}.pem`);
      writeFileSync(file, res.text);
      return file;
    },
    async certStatus(serial) {
      const res = await request(`${managementUrl}/cert-status-by-serial/${normalizeSerial(serial)}`, { ca });
      if (res.status !== 200) throw new Error(`pebble cert-status-by-serial/${serial}: HTTP ${res.status} ${res.text}`);
      const body = res.json<{ Status: string; Reason?: number }>();
      return { status: body.Status, reason: body.Status === 'Revoked' ? (body.Reason ?? 0) : null };
    },
    output: daemon.output,
    stop: daemon.stop,
  };
}

// ---- A request no client sends --------------------------------------------------------------------

/**
 * POSTs a newAccount request (ES256, fresh key) with no externalAccountBinding. certbot and lego
 * both refuse to send one to a directory whose meta says externalAccountRequired, so only this
 * shows that the server itself refuses it (RFC 8555 §7.3.4). Retries once on badNonce (§6.5).
 */
export async function newAccountWithoutEab(directory: string, caBundle: string): Promise<HttpResult> {
  const ca = readFileSync(caBundle, 'utf8');
  const dir = (await request(directory, { ca })).json<{ newNonce: string; newAccount: string }>();
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  let nonce = (await request(dir.newNonce, { method: 'HEAD', ca })).headers?.['replay-nonce'];
  for (let attempt = 0; ; attempt++) {
    const protectedHeader = b64({ alg: 'ES256', jwk: { kty, crv, x, y }, nonce, url: dir.newAccount });
    const payload = b64({ termsOfServiceAgreed: true });
    const signature = sign('sha256', Buffer.from(`${protectedHeader}.${payload}`), {
      key: privateKey,
      dsaEncoding: 'ieee-p1363',
    }).toString('base64url');
    const res = await request(dir.newAccount, {
      method: 'POST',
      ca,
      headers: { 'content-type': 'application/jose+json' },
      body: JSON.stringify({ protected: protectedHeader, payload, signature }),
    });
    if (attempt > 0 || !res.text.includes('urn:ietf:params:acme:error:badNonce')) return res;
    nonce = res.headers?.['replay-nonce'];
  }
}
