/**
 * `pnpm bench:crl`: time, peak memory and size of building and signing a CRL of 10,000, 100,000
 * and 1,000,000 revoked entries with `buildCrl` (P-256 signer, random 16-byte serials, entries
 * from a generator), each in a fresh child process so its peak RSS is that build's alone; beside
 * it, an empty child's RSS and `openssl ca -gencrl` on 100,000 entries. The CRLs are checked with
 * `openssl crl` (signature, entry count) after timing. Prints ratios, asserts nothing.
 *
 * Run as `tsx bench/crl.ts`; it calls itself with `--child ENTRIES KEY CERT OUT` for each build.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildCrl,
  createSigner,
  generateKeyPair,
  importPrivateKeyPem,
  readCertificate,
  type CrlEntry,
  type RevocationReason,
} from '@shortleaf/pki';

const SIZES = [10_000, 100_000, 1_000_000];
const OPENSSL_ENTRIES = 100_000;
const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MB = 1024 * 1024;

interface ChildResult {
  entries: number;
  /** buildCrl alone, input generation included (it is consumed inside). */
  seconds: number;
  /** The same generator run to the end without building, measured after the peak was read. */
  inputSeconds: number;
  peakRssBytes: number;
  crlBytes: number;
}

const REASONS: readonly RevocationReason[] = [
  'keyCompromise',
  'superseded',
  'cessationOfOperation',
  'affiliationChanged',
  'unspecified',
];

/**
 * Revoked entries as a database cursor would yield them: random 16-byte serials in canonical hex,
 * one second apart, a mix of reasons. Randomness is drawn 64 KiB at a time.
 */
function* revokedEntries(count: number): Generator<CrlEntry> {
  const pool = Buffer.alloc(16 * 4096);
  let at = pool.length;
  const base = Date.UTC(2026, 0, 1);
  for (let i = 0; i < count; i++) {
    if (at === pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    let serial = pool.toString('hex', at, at + 16);
    at += 16;
    if (serial.charCodeAt(0) === 0x30) serial = serial.replace(/^0+(?=.)/, '');
    yield { serial, revokedAt: new Date(base + i * 1000), reason: REASONS[i % REASONS.length]! };
  }
}

/** VmHWM: the most resident memory this process has had. */
function peakRss(): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return kb === undefined ? process.resourceUsage().maxRSS * 1024 : Number(kb) * 1024;
}

function child(args: string[]): void {
  const [count, keyFile, certFile, outFile] = args;
  const entries = Number(count);
  const signer = createSigner(importPrivateKeyPem(readFileSync(keyFile!, 'utf8')));
  const cert = readCertificate(readFileSync(certFile!, 'utf8'));
  let crl: Uint8Array | null = null;
  let seconds = 0;
  if (entries > 0) {
    const start = performance.now();
    crl = buildCrl({
      issuer: { subjectDer: cert.subjectDer, subjectKeyIdentifier: cert.subjectKeyIdentifier!, signer },
      number: 1n,
      thisUpdate: new Date(Math.floor(Date.now() / 1000) * 1000),
      nextUpdate: new Date(Math.floor(Date.now() / 1000) * 1000 + 7 * 864e5),
      distributionPoint: 'http://ca.internal/crl',
      entries: revokedEntries(entries),
    });
    seconds = (performance.now() - start) / 1000;
  }
  const peakRssBytes = peakRss();
  let inputSeconds = 0;
  if (entries > 0) {
    const start = performance.now();
    let n = 0;
    for (const _ of revokedEntries(entries)) n++;
    inputSeconds = (performance.now() - start) / 1000;
    if (n !== entries) throw new Error('the generator miscounted');
  }
  if (crl !== null) writeFileSync(outFile!, crl);
  const result: ChildResult = { entries, seconds, inputSeconds, peakRssBytes, crlBytes: crl?.length ?? 0 };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runChild(dir: string, entries: number): ChildResult {
  const run = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      SELF,
      '--child',
      String(entries),
      join(dir, 'signer.key'),
      join(dir, 'signer.pem'),
      join(dir, `crl-${entries}.der`),
    ],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
      killSignal: 'SIGKILL',
    },
  );
  const line = run.stdout?.trim().split('\n').pop() ?? '';
  if (run.status !== 0 || !line.startsWith('{'))
    throw new Error(`the ${entries}-entry child failed (${run.status ?? run.signal}): ${run.stderr}`);
  return JSON.parse(line) as ChildResult;
}

/** `openssl crl` checks the signature against the issuer certificate; `-text` lets us count entries. */
function checkCrl(dir: string, file: string, inform: 'DER' | 'PEM', caFile: string, expected: number): string | null {
  const verify = spawnSync('openssl', ['crl', '-inform', inform, '-in', file, '-CAfile', caFile, '-noout'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (!`${verify.stdout}${verify.stderr}`.includes('verify OK'))
    return `signature: ${verify.stdout}${verify.stderr}`.trim();
  const text = spawnSync(
    'sh',
    ['-c', `openssl crl -inform ${inform} -in ${file} -noout -text | grep -c 'Serial Number:'`],
    { cwd: dir, encoding: 'utf8', timeout: 120_000 },
  );
  const count = Number(text.stdout.trim());
  return count === expected ? null : `openssl counts ${text.stdout.trim()} entries, expected ${expected}`;
}

/** An OpenSSL CA directory with `count` revoked entries, P-256 key, a config for `openssl ca -gencrl`. */
function opensslCaDir(dir: string, count: number): string {
  const ca = join(dir, `openssl-ca-${count}`);
  execFileSync('mkdir', ['-p', ca]);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-subj',
      '/CN=Bench OpenSSL CA',
      '-days',
      '30',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    { cwd: ca, stdio: 'pipe' },
  );
  // index.txt, OpenSSL's CA database: R, expiry, "revocation time[,reason]", serial, file, subject.
  const lines: string[] = [];
  const serial = Buffer.alloc(16);
  const reasons = ['keyCompromise', 'superseded', 'cessationOfOperation', 'affiliationChanged', 'unspecified'];
  const utc = (ms: number) => new Date(ms).toISOString().replace(/\D/g, '').slice(2, 14) + 'Z';
  const expiry = utc(Date.now() + 365 * 864e5);
  const base = Date.UTC(2026, 0, 1);
  for (let i = 0; i < count; i++) {
    randomFillSync(serial);
    serial[0] = 0x10 + (serial[0]! % 0x60); // positive, no padding octet: BN_bn2hex's form
    const reason = reasons[i % reasons.length]!;
    lines.push(
      `R\t${expiry}\t${utc(base + i * 1000)}${reason === 'unspecified' ? '' : `,${reason}`}\t${serial.toString('hex').toUpperCase()}\tunknown\t/CN=x${i}`,
    );
  }
  writeFileSync(join(ca, 'index.txt'), lines.map((l) => `${l}\n`).join(''));
  writeFileSync(join(ca, 'index.txt.attr'), 'unique_subject = no\n');
  writeFileSync(join(ca, 'serial'), '1000\n');
  writeFileSync(join(ca, 'crlnumber'), '01\n');
  writeFileSync(
    join(ca, 'openssl.cnf'),
    `[ca]
default_ca = CA_default

[CA_default]
dir = ${ca}
database = $dir/index.txt
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
new_certs_dir = $dir
default_md = sha256
default_crl_days = 7
crl_extensions = crl_ext
policy = policy_any

[policy_any]
commonName = supplied

# What buildCrl writes: authority key identifier, CRL number (from crlnumber), critical IDP.
[crl_ext]
authorityKeyIdentifier = keyid:always
issuingDistributionPoint = critical, @idp

[idp]
fullname = URI:http://ca.internal/crl
`,
  );
  return ca;
}

/** Times `openssl ca -gencrl` (PEM out, as it writes it); its peak RSS comes from GNU time. */
function opensslGencrl(
  ca: string,
  count: number,
): { seconds: number; peakRssBytes: number; crlBytes: number; check: string | null } {
  const start = performance.now();
  execFileSync(
    '/usr/bin/time',
    ['-f', '%M', '-o', 'time.txt', 'openssl', 'ca', '-config', 'openssl.cnf', '-gencrl', '-out', 'crl.pem'],
    { cwd: ca, stdio: 'pipe', timeout: 120_000 },
  );
  const seconds = (performance.now() - start) / 1000;
  const peakRssBytes = Number(readFileSync(join(ca, 'time.txt'), 'utf8').trim().split('\n').pop()) * 1024;
  execFileSync('openssl', ['crl', '-in', 'crl.pem', '-outform', 'DER', '-out', 'crl.der'], { cwd: ca, stdio: 'pipe' });
  return {
    seconds,
    peakRssBytes,
    crlBytes: statSync(join(ca, 'crl.der')).size,
    check: checkCrl(ca, 'crl.pem', 'PEM', 'ca.pem', count),
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-crl-bench-'));
  try {
    // The signer key comes from our own generateKeyPair; OpenSSL only wraps it in a certificate
    // (subject, key identifier) that `openssl crl -CAfile` can check our signatures against.
    const { privateKey } = generateKeyPair('EC-P256');
    writeFileSync(join(dir, 'signer.key'), privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-new',
        '-key',
        'signer.key',
        '-subj',
        '/CN=Bench CRL issuer',
        '-days',
        '30',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
        '-out',
        'signer.pem',
      ],
      { cwd: dir, stdio: 'pipe' },
    );

    const baseline = runChild(dir, 0);
    const ours = SIZES.map((n) => runChild(dir, n));
    const openssl = opensslGencrl(opensslCaDir(dir, OPENSSL_ENTRIES), OPENSSL_ENTRIES);
    // The same command on an empty database: what starting OpenSSL and signing cost by themselves.
    const opensslEmpty = opensslGencrl(opensslCaDir(dir, 0), 0);
    // After timing: OpenSSL verifies every CRL we built and counts its entries.
    const checks = ours.map((r) => ({
      entries: r.entries,
      failure: checkCrl(dir, `crl-${r.entries}.der`, 'DER', 'signer.pem', r.entries),
    }));

    const mb = (bytes: number) => (bytes / MB).toFixed(1).padStart(8);
    const row = (name: string, entries: number, seconds: number, peak: number, size: number, note = '') =>
      console.log(
        `${name.padEnd(26)} ${entries.toLocaleString('en-US').padStart(10)} ${seconds.toFixed(3).padStart(8)} ${mb(peak)} ${mb(size)}  ${note}`,
      );
    console.log(
      `\nShortleaf CRL benchmark (${new Date().toISOString()}, ${process.version}, P-256 signer, random 16-byte serials)\n`,
    );
    console.log(
      `${'builder'.padEnd(26)} ${'entries'.padStart(10)} ${'seconds'.padStart(8)} ${'peak MB'.padStart(8)} ${'CRL MB'.padStart(8)}  note`,
    );
    row(
      'empty child (baseline)',
      0,
      0,
      baseline.peakRssBytes,
      0,
      'node + tsx + @shortleaf/pki loaded, key imported, nothing built',
    );
    for (const r of ours) {
      row(
        'Shortleaf buildCrl',
        r.entries,
        r.seconds,
        r.peakRssBytes,
        r.crlBytes,
        `+${((r.peakRssBytes - baseline.peakRssBytes) / MB).toFixed(1)} MB over baseline; generating the input alone: ${r.inputSeconds.toFixed(3)} s`,
      );
    }
    row(
      'OpenSSL ca -gencrl',
      0,
      opensslEmpty.seconds,
      opensslEmpty.peakRssBytes,
      opensslEmpty.crlBytes,
      'its fixed cost: process start, config, key, sign',
    );
    row(
      'OpenSSL ca -gencrl',
      OPENSSL_ENTRIES,
      openssl.seconds,
      openssl.peakRssBytes,
      openssl.crlBytes,
      'whole process: start, read index.txt, build, sign, write PEM',
    );

    const at100k = ours.find((r) => r.entries === OPENSSL_ENTRIES)!;
    const at1m = ours.find((r) => r.entries === 1_000_000)!;
    console.log('');
    console.log(
      `Shortleaf / OpenSSL time at ${OPENSSL_ENTRIES.toLocaleString('en-US')}: ${(at100k.seconds / openssl.seconds).toFixed(2)}×   (goal ≤ 1×, at least OpenSSL's speed; OpenSSL is ${(openssl.seconds / at100k.seconds).toFixed(2)}× Shortleaf's time)`,
    );
    console.log(
      `1,000,000 entries: ${at1m.seconds.toFixed(2)} s (goal < 10 s), peak RSS ${(at1m.peakRssBytes / MB).toFixed(0)} MB (goal < 1024 MB)`,
    );
    console.log('\nnotes:');
    console.log(
      '- Each Shortleaf build runs in a fresh child (node --import tsx); peak RSS is its VmHWM, read right after buildCrl returns, so it includes the baseline row. Seconds are buildCrl alone, including consuming the generator (its cost alone is in the note column).',
    );
    console.log(
      '- OpenSSL: its own P-256 CA, index.txt with R lines, the same extensions (AKI, CRL number, critical IDP), timed with performance.now() around execFileSync; peak RSS from /usr/bin/time. Its CRL size is the DER form.',
    );
    for (const c of checks)
      console.log(
        `- ${c.entries.toLocaleString('en-US')}-entry CRL: ${c.failure === null ? 'openssl crl: verify OK, entry count matches' : `CHECK FAILED: ${c.failure}`}`,
      );
    for (const [n, o] of [
      [0, opensslEmpty],
      [OPENSSL_ENTRIES, openssl],
    ] as const) {
      console.log(
        `- OpenSSL's ${n.toLocaleString('en-US')}-entry CRL: ${o.check === null ? 'verify OK, entry count matches' : `CHECK FAILED: ${o.check}`}`,
      );
    }
    console.log(
      "- A revocation does not wait for a CRL: the authority's CRL publisher (createCrlPublisher) rebuilds after requestRebuild(), debounced by crl.rebuildDelay; not measured here. buildCrl itself is synchronous, on the server's event loop, for the times above.",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') child(process.argv.slice(3));
else await main();
