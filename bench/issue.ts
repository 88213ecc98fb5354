/**
 * `pnpm bench:issue`: certificates/s through POST /api/v1/sign (HTTPS, keep-alive) at
 * concurrency 1 and 16, against the crypto floor measured in the same run: how many times per
 * second this machine can do one issuance's public-key work (verify the token, verify the CSR,
 * sign the certificate) with node:crypto. Also prints @peculiar/x509's generator rate, the naive
 * way to build certificates, so the cost of building is visible. Prints ratios, asserts nothing.
 */
import { createSign, generateKeyPairSync, sign, verify, webcrypto } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Agent, request } from 'node:https';
import { dirname, join } from 'node:path';
import type { JWK } from 'jose';
import { mintToken } from '@shortleaf/client';
import { createCsr, csrToPem, generateKeyPair, parseName } from '@shortleaf/pki';
import { x509 } from '../packages/pki/src/x509.js';
import { parseArgs } from 'node:util';
import { cpuMs, freePort, startServer, type BenchServer } from './server.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);

function rate(fn: () => void, seconds = 2): number {
  for (let i = 0; i < 50; i++) fn();
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const start = performance.now();
  while (performance.now() < end) {
    fn();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

async function rateAsync(fn: () => Promise<unknown>, seconds = 2): Promise<number> {
  for (let i = 0; i < 10; i++) await fn();
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const start = performance.now();
  while (performance.now() < end) {
    await fn();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

/**
 * One issuance's public-key work with node:crypto: ES256 token verify (the provisioner's key is
 * imported once and cached, as the server does), CSR verify (every CSR brings a new key, so it is
 * imported from DER each time), certificate sign with the intermediate's cached key.
 */
function cryptoFloor(): number {
  const token = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const csrKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const caKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwtInput = Buffer.alloc(400, 1);
  const jwtSig = sign('sha256', jwtInput, { key: token.privateKey, dsaEncoding: 'ieee-p1363' });
  const csrInput = Buffer.alloc(300, 2);
  const csrSig = createSign('sha256').update(csrInput).sign(csrKey.privateKey);
  const csrSpki = csrKey.publicKey.export({ format: 'der', type: 'spki' });
  const tbs = Buffer.alloc(550, 3);
  return rate(() => {
    verify('sha256', jwtInput, { key: token.publicKey, dsaEncoding: 'ieee-p1363' }, jwtSig);
    verify('sha256', csrInput, { key: csrSpki, format: 'der', type: 'spki' }, csrSig);
    sign('sha256', tbs, caKey.privateKey);
  });
}

/** The naive builder: @peculiar/x509's generator with a leaf's extensions, on Node's WebCrypto. */
async function naiveGeneratorRate(): Promise<number> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const ca = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const leaf = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const build = async () =>
    x509.X509CertificateGenerator.create({
      serialNumber: '0102030405060708090a0b0c0d0e0f10',
      subject: 'CN=svc.internal',
      issuer: 'CN=Shortleaf Intermediate CA',
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 864e5),
      signingAlgorithm: alg,
      publicKey: leaf.publicKey as never,
      signingKey: ca.privateKey as never,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']),
        await x509.SubjectKeyIdentifierExtension.create(leaf.publicKey as never),
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'svc.internal' }]),
      ],
    });
  return rateAsync(build);
}

/**
 * Drives POST /api/v1/sign with wrk (C, one thread) so the load generator is not the bottleneck
 * on a 2-core machine; each request carries its own pre-minted token. Returns null without wrk.
 */
function wrkRate(
  url: string,
  tokens: string[],
  csr: string,
  concurrency: number,
  seconds: number,
): { rate: number; errors: number } | null {
  if (spawnSync('wrk', ['--version']).error !== undefined) return null;
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-wrk-'));
  try {
    const bodies = join(dir, 'bodies.jsonl');
    writeFileSync(bodies, tokens.map((token) => JSON.stringify({ csr, token })).join('\n'));
    const script = new URL('./sign.lua', import.meta.url).pathname;
    const run = spawnSync('wrk', ['-t1', `-c${concurrency}`, `-d${seconds}s`, '-s', script, url, '--', bodies], {
      encoding: 'utf8',
      timeout: (seconds + 30) * 1000,
    });
    const requests = Number(/(\d+) requests in/.exec(run.stdout)?.[1] ?? NaN);
    const duration = /requests in ([\d.]+)(m?s)/.exec(run.stdout);
    const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(run.stdout)?.[1] ?? 0);
    if (Number.isNaN(requests) || duration === null)
      throw new Error(`cannot read wrk's output: ${run.stdout}${run.stderr}`);
    const secs = Number(duration[1]) / (duration[2] === 'ms' ? 1000 : 1);
    return { rate: (requests - errors) / secs, errors };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** wrk against several instances at once (one wrk each, splitting the connections); null without wrk. */
async function wrkRateSplit(
  urls: string[],
  tokens: string[],
  csr: string,
  concurrency: number,
  seconds: number,
): Promise<{ rate: number; errors: number } | null> {
  if (spawnSync('wrk', ['--version']).error !== undefined) return null;
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-wrk-'));
  try {
    const script = new URL('./sign.lua', import.meta.url).pathname;
    const share = Math.ceil(tokens.length / urls.length);
    const runs = urls.map((url, i) => {
      const bodies = join(dir, `bodies-${i}.jsonl`);
      const mine = tokens.slice(i * share, (i + 1) * share);
      writeFileSync(bodies, mine.map((token) => JSON.stringify({ csr, token })).join('\n'));
      const args = [
        '-t1',
        `-c${Math.max(1, concurrency / urls.length)}`,
        `-d${seconds}s`,
        '-s',
        script,
        url,
        '--',
        bodies,
      ];
      return new Promise<{ requests: number; errors: number; secs: number }>((resolve, reject) => {
        const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
        child.once('exit', () => {
          clearTimeout(timer);
          const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? NaN);
          const duration = /requests in ([\d.]+)(m?s)/.exec(stdout);
          const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
          if (Number.isNaN(requests) || duration === null)
            return reject(new Error(`cannot read wrk's output: ${stdout}`));
          resolve({ requests, errors, secs: Number(duration[1]) / (duration[2] === 'ms' ? 1000 : 1) });
        });
      });
    });
    const results = await Promise.all(runs);
    const errors = results.reduce((n, r) => n + r.errors, 0);
    const good = results.reduce((n, r) => n + r.requests - r.errors, 0);
    return { rate: good / Math.max(...results.map((r) => r.secs)), errors };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function issueRate(
  url: string,
  rootPem: string,
  tokens: string[],
  csr: string,
  concurrency: number,
): Promise<{ rate: number; errors: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency, ca: rootPem });
  const target = new URL('/api/v1/sign', url);
  const post = (token: string) =>
    new Promise<number>((resolve, reject) => {
      const body = JSON.stringify({ csr, token });
      const req = request(
        target,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  // Warm up the connections and the JIT, then time the rest.
  const warm = tokens.splice(0, concurrency * 4);
  await Promise.all(warm.map(post));
  let errors = 0;
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < tokens.length) {
        const status = await post(tokens[next++]!);
        if (status !== 201) errors++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  return { rate: tokens.length / seconds, errors };
}

const { values: flags } = parseArgs({ options: { database: { type: 'string' } } });

interface Measured {
  rate: number;
  errors: number;
  cpuPerCert: number;
}

/**
 * Measures issuance through `servers` (one, or several instances of one CA on PostgreSQL, the
 * load split evenly) at concurrency 1 and 16: rate and the servers' CPU per certificate.
 */
async function measureServers(servers: BenchServer[]): Promise<{ c1: Measured; c16: Measured }> {
  const first = servers[0]!;
  const rootPem = readFileSync(join(first.dataDir, 'offline-root', 'root.crt'), 'utf8');
  const jwk = JSON.parse(readFileSync(join(first.dataDir, 'provisioners', 'admin.jwk'), 'utf8')) as JWK;
  const { privateKey } = generateKeyPair('EC-P256');
  const csr = csrToPem(createCsr(privateKey, { commonName: 'svc.internal' }, [parseName('svc.internal')]));
  // Tokens are minted for the first instance's URL: every instance of one CA shares its public URL.
  const mint = (n: number) =>
    Promise.all(
      Array.from({ length: n }, () =>
        mintToken({ provisioner: 'admin', privateJwk: jwk, caUrl: first.publicUrl, subject: 'svc.internal' }),
      ),
    );
  // Warm every instance (JIT, statement cache, TLS session) before anything is timed.
  for (const server of servers) await issueRate(server.api, rootPem, await mint(400), csr, 16);
  const cpu = () => servers.reduce((sum, s) => sum + cpuMs(s.pid), 0);
  const measure = async (concurrency: number, perSecond: number): Promise<Measured> => {
    const tokens = await mint(Math.ceil(perSecond * SECONDS));
    const cpuBefore = cpu();
    const result =
      servers.length === 1
        ? (wrkRate(first.api, tokens, csr, concurrency, SECONDS) ??
          (await issueRate(first.api, rootPem, tokens, csr, concurrency)))
        : await wrkRateSplit(
            servers.map((s) => s.api),
            tokens,
            csr,
            concurrency,
            SECONDS,
          );
    if (result === null) throw new Error("several instances are measured with wrk: install Debian's wrk");
    const cpuPerCert = (cpu() - cpuBefore) / (result.rate * SECONDS);
    return { ...result, cpuPerCert };
  };
  const c1 = servers.length === 1 ? await measure(1, 1500) : { rate: NaN, errors: 0, cpuPerCert: NaN };
  const c16 = await measure(16, 5000);
  return { c1, c16 };
}

async function withServers<T>(starts: Array<() => Promise<BenchServer>>, use: (s: BenchServer[]) => Promise<T>) {
  const servers: BenchServer[] = [];
  try {
    for (const start of starts) servers.push(await start());
    return await use(servers);
  } finally {
    for (const server of servers.reverse()) await server.stop();
  }
}

const floor = cryptoFloor();
const naive = await naiveGeneratorRate();
const sqlite = await withServers([() => startServer()], measureServers);

const row = (name: string, value: number, note = '') =>
  console.log(`${name.padEnd(46)} ${value.toFixed(0).padStart(8)}/s  ${note}`);
const ratio = (m: Measured) =>
  `${(m.rate / floor).toFixed(2)}× floor, ${m.cpuPerCert.toFixed(3)} ms server CPU per certificate${m.errors ? `, ${m.errors} errors` : ''}`;
const loadGenerator = spawnSync('wrk', ['--version']).error === undefined ? 'wrk (1 thread)' : 'node https client';

/**
 * PostgreSQL: one instance, then a second instance of the same CA beside it (the load split
 * evenly). `--database URL` takes an empty database; `--database temp` starts a throwaway
 * PostgreSQL server with the test harness (Debian's postgresql, run as the postgres user).
 */
async function measurePostgres(url: string) {
  // Every instance of one CA answers to one public URL (a load balancer's, in production); token
  // audiences are made from it, so each instance is told the same one.
  const config = join(mkdtempSync(join(tmpdir(), 'shortleaf-bench-config-')), 'instances.json');
  writeFileSync(config, JSON.stringify({ publicUrl: `https://localhost:${await freePort()}` }));
  const serveArgs = ['--config', config];
  try {
    const first = await startServer({ database: url, serveArgs });
    try {
      const one = await measureServers([first]);
      const second = await startServer({ database: url, sharedDataDir: first.dataDir, serveArgs });
      try {
        const two = await measureServers([first, second]);
        return { one, two };
      } finally {
        await second.stop();
      }
    } finally {
      await first.stop();
    }
  } finally {
    rmSync(dirname(config), { recursive: true, force: true });
  }
}

let postgres: Awaited<ReturnType<typeof measurePostgres>> | undefined;
if (flags.database === 'temp') {
  const { startPostgres } = await import('@shortleaf/store/postgres-testing');
  const server = await startPostgres({ logStatements: false });
  try {
    postgres = await measurePostgres(await server.createDatabase());
  } finally {
    await server.destroy();
  }
} else if (flags.database !== undefined) {
  postgres = await measurePostgres(flags.database);
}

console.log(`\nShortleaf issuance benchmark (${new Date().toISOString()}, ${process.version})\n`);
row('crypto floor (verify token + verify CSR + sign)', floor, 'node:crypto, one core');
row('@peculiar/x509 X509CertificateGenerator', naive, `${(naive / floor).toFixed(2)}× floor (the naive builder alone)`);
row('SQLite: POST /api/v1/sign, concurrency 1', sqlite.c1.rate, ratio(sqlite.c1));
row('SQLite: POST /api/v1/sign, concurrency 16', sqlite.c16.rate, ratio(sqlite.c16));
if (postgres !== undefined) {
  const { one, two } = postgres;
  row('PostgreSQL, 1 instance: concurrency 1', one.c1.rate, ratio(one.c1));
  row('PostgreSQL, 1 instance: concurrency 16', one.c16.rate, ratio(one.c16));
  row('PostgreSQL, 2 instances: concurrency 16', two.c16.rate, `${ratio(two.c16)} (both instances)`);
  console.log(
    `PostgreSQL vs SQLite at concurrency 16: 1 instance ${(one.c16.rate / sqlite.c16.rate).toFixed(2)}×, 2 instances ${(two.c16.rate / sqlite.c16.rate).toFixed(2)}×`,
  );
  console.log('(the database server runs on the same machine and its CPU is not counted per certificate)');
}
console.log(`\nload generator: ${loadGenerator}`);
console.log(
  `goal: issuance ≥ 0.50× the crypto floor — concurrency 16 reached ${(sqlite.c16.rate / floor).toFixed(2)}×`,
);
