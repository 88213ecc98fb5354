/**
 * `pnpm bench:issue`: certificates/s through POST /api/v1/sign (HTTPS, keep-alive) at
 * concurrency 1 and 16, against the crypto floor measured in the same run: how many times per
 * second this machine can do one issuance's public-key work (verify the token, verify the CSR,
 * sign the certificate) with node:crypto. Also prints @peculiar/x509's generator rate, the naive
 * way to build certificates, so the cost of building is visible. Prints ratios, asserts nothing.
 */
import { createSign, generateKeyPairSync, sign, verify, webcrypto } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { mintToken } from '@shortleaf/client';
import { createCsr, csrToPem, generateKeyPair, parseName } from '@shortleaf/pki';
import { x509 } from '../packages/pki/src/x509.js';
import { cpuMs, startServer } from './server.js';

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

const server = await startServer();
try {
  const rootPem = readFileSync(join(server.dataDir, 'offline-root', 'root.crt'), 'utf8');
  const jwk = JSON.parse(readFileSync(join(server.dataDir, 'provisioners', 'admin.jwk'), 'utf8')) as JWK;
  const { privateKey } = generateKeyPair('EC-P256');
  const csr = csrToPem(createCsr(privateKey, { commonName: 'svc.internal' }, [parseName('svc.internal')]));
  const mint = (n: number) =>
    Promise.all(
      Array.from({ length: n }, () =>
        mintToken({ provisioner: 'admin', privateJwk: jwk, caUrl: server.publicUrl, subject: 'svc.internal' }),
      ),
    );

  const floor = cryptoFloor();
  const naive = await naiveGeneratorRate();
  // Warm the server (JIT, statement cache, TLS session) before anything is timed.
  await issueRate(server.publicUrl, rootPem, await mint(400), csr, 16);
  const measure = async (concurrency: number, perSecond: number) => {
    const tokens = await mint(Math.ceil(perSecond * SECONDS));
    const cpuBefore = cpuMs(server.pid);
    const result =
      wrkRate(server.publicUrl, tokens, csr, concurrency, SECONDS) ??
      (await issueRate(server.publicUrl, rootPem, tokens, csr, concurrency));
    const cpuPerCert = (cpuMs(server.pid) - cpuBefore) / (result.rate * SECONDS);
    return { ...result, cpuPerCert };
  };
  const loadGenerator = spawnSync('wrk', ['--version']).error === undefined ? 'wrk (1 thread)' : 'node https client';
  const c1 = await measure(1, 1500);
  const c16 = await measure(16, 5000);

  const row = (name: string, value: number, note = '') =>
    console.log(`${name.padEnd(46)} ${value.toFixed(0).padStart(8)}/s  ${note}`);
  console.log(`\nShortleaf issuance benchmark (${new Date().toISOString()}, ${process.version})\n`);
  row('crypto floor (verify token + verify CSR + sign)', floor, 'node:crypto, one core');
  row(
    '@peculiar/x509 X509CertificateGenerator',
    naive,
    `${(naive / floor).toFixed(2)}× floor (the naive builder alone)`,
  );
  row(
    'POST /api/v1/sign, concurrency 1',
    c1.rate,
    `${(c1.rate / floor).toFixed(2)}× floor${c1.errors ? `, ${c1.errors} errors` : ''}`,
  );
  row(
    'POST /api/v1/sign, concurrency 16',
    c16.rate,
    `${(c16.rate / floor).toFixed(2)}× floor${c16.errors ? `, ${c16.errors} errors` : ''}`,
  );
  console.log(
    `\nload generator: ${loadGenerator}; server CPU per certificate: ${c1.cpuPerCert.toFixed(3)} ms at concurrency 1, ${c16.cpuPerCert.toFixed(3)} ms at 16`,
  );
  console.log(`goal: issuance ≥ 0.50× the crypto floor — concurrency 16 reached ${(c16.rate / floor).toFixed(2)}×`);
} finally {
  await server.stop();
}
