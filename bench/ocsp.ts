/**
 * `pnpm bench:ocsp`: OCSP responses/s and p99 latency for cached "good" answers (no nonce, so
 * RFC 5019 pre-signed), POST and GET, keep-alive, 32 connections, driven by wrk. In the same run
 * and with the same load generator: OpenSSL's own responder (`openssl ocsp -index`, which signs
 * every response), and nginx serving one of our pre-signed responses as a static file, the ceiling
 * for sending precomputed bytes on this machine. Every server's answers are verified with
 * `openssl ocsp -respin` before anything is timed. Prints ratios, asserts nothing.
 *
 * A bare node:http server sending the same bytes is measured too, as the most any Node responder
 * could do here. Then the intermediate is rotated (`intermediate csr`, `root sign-intermediate`,
 * `import`, `activate`) and the same leaves are asked for again: they now belong to a retired
 * intermediate, whose responder the router reaches after missing the active one's cache.
 *
 * BENCH_SECONDS (default 4) sets each run's length; BENCH_PROFILE=1 runs the server under
 * `node --cpu-prof`, pinned to CPU 0 with wrk on CPU 1, and prints where its time went during the
 * Shortleaf runs.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { mintToken } from '@shortleaf/client';
import { createCsr, csrToPem, decodePem, generateKeyPair, parseName } from '@shortleaf/pki';
import {
  cpuTimes,
  runWrk,
  shortleafCli,
  spawnGroup,
  startNginx,
  startNodeStatic,
  startServer,
  summarizeCpuProfile,
  waitForOutput,
  type BenchServer,
  type WrkResult,
} from './server.js';
import { benchWorkspace } from './workspace.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const WARM_SECONDS = 1;
const CONNECTIONS = 32;
const LEAVES = 20;
const PROFILE = process.env.BENCH_PROFILE === '1';
const SCRIPT = new URL('./ocsp.lua', import.meta.url).pathname;

function run(command: string, args: string[], cwd: string): string {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed (${r.status ?? r.error?.message}): ${r.stdout}${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

/**
 * `openssl ocsp -respin`: the response's signature and responder chain verify against `caFile`,
 * and the certificate's status is "good". Anything else (an error response, a wrong CertID, an
 * unauthorised signer) is a failure we must not benchmark.
 */
function verifyResponse(
  dir: string,
  response: Uint8Array,
  o: { issuer: string; cert: string; caFile: string },
): string | null {
  const file = join(dir, `verify-${randomBytes(4).toString('hex')}.der`);
  writeFileSync(file, response);
  const r = spawnSync(
    'openssl',
    ['ocsp', '-respin', file, '-issuer', o.issuer, '-verify_other', o.issuer, '-cert', o.cert, '-CAfile', o.caFile],
    { cwd: dir, encoding: 'utf8' },
  );
  rmSync(file, { force: true });
  const out = `${r.stdout}${r.stderr}`;
  return r.status === 0 && out.includes('Response verify OK') && new RegExp(`${o.cert}: good`).test(out)
    ? null
    : out.trim();
}

function post(url: URL, body: string, caPem: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca: caPem,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Issues LEAVES certificates through POST /api/v1/sign and writes leafN.pem, intermediate.pem and root.pem. */
async function issueLeaves(server: BenchServer, dir: string): Promise<void> {
  const rootPem = readFileSync(join(server.dataDir, 'offline-root', 'root.crt'), 'utf8');
  writeFileSync(join(dir, 'root.pem'), rootPem);
  const jwk = JSON.parse(readFileSync(join(server.dataDir, 'provisioners', 'admin.jwk'), 'utf8')) as JWK;
  const { privateKey } = generateKeyPair('EC-P256');
  const csr = csrToPem(createCsr(privateKey, { commonName: 'svc.internal' }, [parseName('svc.internal')]));
  for (let i = 0; i < LEAVES; i++) {
    const token = await mintToken({
      provisioner: 'admin',
      privateJwk: jwk,
      caUrl: server.publicUrl,
      subject: 'svc.internal',
    });
    const res = await post(new URL('/api/v1/sign', server.publicUrl), JSON.stringify({ csr, token }), rootPem);
    if (res.status !== 201) throw new Error(`sign failed with ${res.status}: ${res.body}`);
    const issued = JSON.parse(res.body) as { certificate: string; chain: string };
    writeFileSync(join(dir, `leaf${i}.pem`), issued.certificate);
    if (i === 0) writeFileSync(join(dir, 'intermediate.pem'), issued.chain);
  }
}

/** One DER OCSP request per leaf, from OpenSSL's client: SHA-1 CertID, no nonce, so cacheable. */
function buildRequests(dir: string, issuer: string, prefix: string): Buffer[] {
  return Array.from({ length: LEAVES }, (_, i) => {
    run(
      'openssl',
      ['ocsp', '-issuer', issuer, '-cert', `${prefix}${i}.pem`, '-no_nonce', '-reqout', `${prefix}-req${i}.der`],
      dir,
    );
    return readFileSync(join(dir, `${prefix}-req${i}.der`));
  });
}

/** RFC 5019 §5: GET {url}/{url-encoding of base64 encoding of the DER request}. */
const getPath = (req: Buffer, base = '/ocsp') => `${base}/${encodeURIComponent(req.toString('base64'))}`;

/** Writes the wrk script's input files: hex request bodies for POST, request paths for GET. */
function wrkInputs(dir: string, name: string, requests: Buffer[]): { post: string; get: string } {
  const files = { post: join(dir, `${name}-post.txt`), get: join(dir, `${name}-get.txt`) };
  writeFileSync(files.post, requests.map((r) => r.toString('hex')).join('\n'));
  writeFileSync(files.get, requests.map((r) => getPath(r, name === 'openssl' ? '' : '/ocsp')).join('\n'));
  return files;
}

/**
 * A throwaway OpenSSL CA for OpenSSL's responder: we cannot hand OpenSSL the intermediate's key
 * (it is sealed in Shortleaf's database), so OpenSSL answers for its own root → LEAVES leaves,
 * through a delegated P-256 responder certificate, as Shortleaf does for its own leaves.
 */
function opensslCa(dir: string): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run(
    'openssl',
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-subj',
      '/CN=Bench OpenSSL CA',
      '-days',
      '2',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  writeFileSync(
    join(dir, 'ext.cnf'),
    '[ocsp]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=OCSPSigning\nnoCheck=ignored\n[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:svc.internal\n',
  );
  run(
    'openssl',
    ['req', '-new', ...ec, '-keyout', 'rkey.pem', '-out', 'rsigner.csr', '-subj', '/CN=Bench OpenSSL OCSP responder'],
    dir,
  );
  run(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      'rsigner.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-set_serial',
      '0x1000',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
      '-extensions',
      'ocsp',
      '-out',
      'rsigner.pem',
    ],
    dir,
  );
  run(
    'openssl',
    ['req', '-new', ...ec, '-keyout', 'osl-leaf.key', '-out', 'osl-leaf.csr', '-subj', '/CN=svc.internal'],
    dir,
  );
  const expiry = new Date(Date.now() + 2 * 864e5).toISOString().replace(/\D/g, '').slice(2, 14);
  const index: string[] = [];
  for (let i = 0; i < LEAVES; i++) {
    // A 16-byte positive serial whose top octet needs no padding: index.txt holds it as OpenSSL's
    // BN_bn2hex writes it (upper-case hex), which is how the responder looks it up.
    const serial = Buffer.concat([Buffer.of(0x10 + (randomBytes(1)[0]! % 0x60)), randomBytes(15)])
      .toString('hex')
      .toUpperCase();
    run(
      'openssl',
      [
        'x509',
        '-req',
        '-in',
        'osl-leaf.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-set_serial',
        `0x${serial}`,
        '-days',
        '1',
        '-extfile',
        'ext.cnf',
        '-extensions',
        'leaf',
        '-out',
        `osl${i}.pem`,
      ],
      dir,
    );
    index.push(`V\t${expiry}Z\t\t${serial}\tunknown\t/CN=svc.internal`);
  }
  writeFileSync(join(dir, 'index.txt'), `${index.join('\n')}\n`);
  // Every leaf has the same subject, as Shortleaf's do; OpenSSL's CA database refuses that by default.
  writeFileSync(join(dir, 'index.txt.attr'), 'unique_subject = no\n');
}

/**
 * OpenSSL 3.0's responder cannot be told an address: `-port` binds every interface. It runs in a
 * private network namespace holding only a loopback interface, and wrk joins it with nsenter.
 */
async function startOpensslResponder(dir: string): Promise<{ port: number; ns: string[]; stop(): Promise<void> }> {
  const responder = [
    'openssl',
    'ocsp',
    '-index',
    'index.txt',
    '-port',
    '0',
    '-rsigner',
    'rsigner.pem',
    '-rkey',
    'rkey.pem',
    '-CA',
    'ca.pem',
    '-multi',
    '2',
    '-ignore_err',
  ];
  const s = spawnGroup(
    'unshare',
    ['-n', 'sh', '-c', `ip link set lo up && exec ${responder.join(' ')}`],
    dir,
    'SIGTERM',
    true,
  );
  try {
    const m = await waitForOutput(s, /ACCEPT \S*:(\d+)/, "OpenSSL's responder");
    // OpenSSL binds before it reads the index: give it time to fail, and -multi to fork its workers.
    await new Promise((r) => setTimeout(r, 300));
    if (s.child.exitCode !== null)
      throw new Error(`OpenSSL's responder exited with ${s.child.exitCode}: ${s.output()}`);
    return { port: Number(m[1]), ns: ['nsenter', '-t', String(s.child.pid), '-n'], stop: s.stop };
  } catch (err) {
    await s.stop();
    throw err;
  }
}

async function fetchBytes(url: string, init?: RequestInit): Promise<Uint8Array> {
  const res = await fetch(url, init);
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** A short untimed run to warm connections and the JIT, then the timed one. */
function load(url: string, mode: 'post' | 'get', file: string, prefix?: string[]): WrkResult {
  const opts = {
    url,
    connections: CONNECTIONS,
    script: SCRIPT,
    scriptArgs: [mode, file],
    ...(prefix === undefined ? {} : { prefix }),
  };
  runWrk({ ...opts, seconds: WARM_SECONDS });
  return runWrk({ ...opts, seconds: SECONDS });
}

const { work, stops, cleanUp } = benchWorkspace('shortleaf-ocsp-bench-');
const profileDir = join(work, 'profile');
try {
  const server = await startServer(PROFILE ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profileDir] } : {});
  // Profiling: the server on CPU 0 and wrk on CPU 1, or the sampler charges the time the server
  // sits preempted by wrk to whatever it was doing (mostly writev, which wakes wrk up).
  const pin =
    PROFILE &&
    availableParallelism() >= 2 &&
    spawnSync('taskset', ['-a', '-p', '-c', '0', String(server.pid)]).status === 0;
  const wrkPrefix = pin ? { prefix: ['taskset', '-c', '1'] } : {};
  stops.push(server.stop);
  const notes: string[] = [];

  // Shortleaf: LEAVES leaves, one request each, verified and cached before timing.
  await issueLeaves(server, work);
  const ours = buildRequests(work, 'intermediate.pem', 'leaf');
  const ourFiles = wrkInputs(work, 'shortleaf', ours);
  const ocspUrl = `${server.statusUrl}/ocsp`;
  const ourResponses: Uint8Array[] = [];
  for (const [i, req] of ours.entries()) {
    const viaPost = await fetchBytes(ocspUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request' },
      body: req,
    });
    const viaGet = await fetchBytes(`${server.statusUrl}${getPath(req)}`);
    for (const [how, response] of [
      ['POST', viaPost],
      ['GET', viaGet],
    ] as const) {
      const failure = verifyResponse(work, response, {
        issuer: 'intermediate.pem',
        cert: `leaf${i}.pem`,
        caFile: 'root.pem',
      });
      if (failure !== null) throw new Error(`Shortleaf's ${how} response for leaf ${i} does not verify:\n${failure}`);
    }
    if (!Buffer.from(viaPost).equals(viaGet))
      throw new Error(`leaf ${i}: GET and POST answered different bytes; the cache is not serving both`);
    ourResponses.push(viaPost);
  }

  const monotonicUs = () => process.hrtime.bigint() / 1000n;
  const windows: Array<{ what: string; from: bigint; to: bigint }> = [];
  // Server CPU per response over the timed run alone (the warm-up run is outside the readings).
  const timed = (what: string, mode: 'post' | 'get', url: string, file: string) => {
    const opts = { url, connections: CONNECTIONS, script: SCRIPT, scriptArgs: [mode, file], ...wrkPrefix };
    runWrk({ ...opts, seconds: WARM_SECONDS });
    const from = monotonicUs();
    const before = cpuTimes(server.pid);
    const result = runWrk({ ...opts, seconds: SECONDS });
    const after = cpuTimes(server.pid);
    windows.push({ what, from, to: monotonicUs() });
    return {
      result,
      user: (after.user - before.user) / result.requests,
      system: (after.system - before.system) / result.requests,
    };
  };
  const post = timed('POST', 'post', ocspUrl, ourFiles.post);
  const get = timed('GET', 'get', server.statusUrl, ourFiles.get);
  const [ourPost, ourGet] = [post.result, get.result];

  // Rotate: the leaves above now belong to a retired intermediate.
  const data = server.dataDir;
  shortleafCli(['intermediate', 'csr', '--data', data, '--name', 'next', '--out', join(work, 'next.csr')]);
  shortleafCli([
    'root',
    'sign-intermediate',
    '--root',
    join(data, 'offline-root'),
    '--csr',
    join(work, 'next.csr'),
    '--out',
    join(work, 'next.crt'),
  ]);
  shortleafCli([
    'intermediate',
    'import',
    '--data',
    data,
    '--name',
    'next',
    '--cert',
    join(work, 'next.crt'),
    '--root',
    join(data, 'offline-root', 'root.crt'),
  ]);
  shortleafCli(['intermediate', 'activate', '--data', data, 'next']);
  // The status listener's /intermediate.crt is the active intermediate's: it turns into next's.
  const nextDer = decodePem(readFileSync(join(work, 'next.crt'), 'utf8'))[0]!.der;
  const switchedBy = Date.now() + 15_000;
  // A failed fetch (an idle keep-alive connection the server closed) counts as "not yet".
  while (
    !Buffer.from((await fetchBytes(`${server.statusUrl}/intermediate.crt`).catch(() => null)) ?? []).equals(nextDer)
  ) {
    if (Date.now() > switchedBy) throw new Error('the server did not switch to the new intermediate within 15 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const [i, req] of ours.entries()) {
    const failure = verifyResponse(
      work,
      await fetchBytes(ocspUrl, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: req }),
      { issuer: 'intermediate.pem', cert: `leaf${i}.pem`, caFile: 'root.pem' },
    );
    if (failure !== null)
      throw new Error(
        `after the rotation, the response for leaf ${i} of the retired intermediate does not verify:\n${failure}`,
      );
  }
  const retired = timed('POST (retired intermediate)', 'post', ocspUrl, ourFiles.post);
  await stops.pop()!(); // the server: frees its core for the others, and writes its CPU profile

  // OpenSSL's responder for its own throwaway CA, the same number of leaves, the same request shape.
  opensslCa(work);
  const theirs = buildRequests(work, 'ca.pem', 'osl');
  const theirFiles = wrkInputs(work, 'openssl', theirs);
  // A fresh responder for each run, and no warm-up run: OpenSSL 3.0's -multi workers spin at full
  // CPU, answering nothing, once a client drops a connection without a complete request (as wrk
  // does when it stops) or after a 400. Every verified request before the run is complete.
  const opensslRun = async (mode: 'post' | 'get'): Promise<WrkResult | string> => {
    const responder = await startOpensslResponder(work);
    stops.push(responder.stop);
    try {
      const base = `http://127.0.0.1:${responder.port}`;
      const curl = (args: string[]) =>
        spawnSync(
          responder.ns[0]!,
          [...responder.ns.slice(1), 'curl', '-sf', '--max-time', '5', '-o', 'osl-resp.der', ...args],
          { cwd: work, timeout: 10_000 },
        );
      for (const [i, req] of theirs.entries()) {
        rmSync(join(work, 'osl-resp.der'), { force: true });
        // Its responder URL is the root: GET takes /<base64>, and /ocsp/<base64> is a 400.
        const r = curl(
          mode === 'post'
            ? ['--data-binary', `@osl-req${i}.der`, '-H', 'content-type: application/ocsp-request', `${base}/`]
            : [`${base}${getPath(req, '')}`],
        );
        const failure =
          r.status === 0
            ? verifyResponse(work, readFileSync(join(work, 'osl-resp.der')), {
                issuer: 'ca.pem',
                cert: `osl${i}.pem`,
                caFile: 'ca.pem',
              })
            : `curl exited with ${r.status ?? r.signal}`;
        if (failure !== null)
          return `its ${mode.toUpperCase()} response for leaf ${i} does not verify: ${failure.split('\n')[0]}`;
      }
      return runWrk({
        url: `${base}/`,
        connections: CONNECTIONS,
        seconds: SECONDS,
        script: SCRIPT,
        scriptArgs: [mode, mode === 'post' ? theirFiles.post : theirFiles.get],
        prefix: responder.ns,
      });
    } finally {
      await stops.pop()!();
    }
  };
  const measured = async (mode: 'post' | 'get'): Promise<WrkResult | null> => {
    const result = await opensslRun(mode).catch((err: Error) => err.message.split('\n')[0]!);
    if (typeof result !== 'string') return result;
    notes.push(`OpenSSL's responder, ${mode.toUpperCase()}: not measured, ${result}`);
    return null;
  };
  const opensslPost = await measured('post');
  const opensslGet = await measured('get');
  if (opensslGet !== null)
    notes.push(
      "OpenSSL's responder answers GET too, at its own root (/<url-encoded base64>; /ocsp/<base64> is a 400): both rows shown, the ratio uses its better one.",
    );

  // nginx: one of our own pre-signed responses as a static file, GET only.
  const nginx: Array<{ workers: string; result: WrkResult }> = [];
  const staticBody = ourResponses[0]!;
  for (const workers of ['1', 'auto']) {
    const n = await startNginx(work, workers, staticBody);
    stops.push(n.stop);
    const served = await fetchBytes(`http://127.0.0.1:${n.port}${getPath(ours[0]!)}`);
    if (!Buffer.from(served).equals(staticBody))
      throw new Error('nginx does not serve the response file byte for byte');
    const failure = verifyResponse(work, served, { issuer: 'intermediate.pem', cert: 'leaf0.pem', caFile: 'root.pem' });
    if (failure !== null) throw new Error(`nginx's response does not verify:\n${failure}`);
    nginx.push({ workers, result: load(`http://127.0.0.1:${n.port}`, 'get', ourFiles.get) });
    await stops.pop()!();
  }

  // Reference: bare node:http sending the same bytes, GET, same paths.
  const bare = await startNodeStatic(work, staticBody);
  stops.push(bare.stop);
  const bareServed = await fetchBytes(`http://127.0.0.1:${bare.port}${getPath(ours[0]!)}`);
  if (!Buffer.from(bareServed).equals(staticBody))
    throw new Error('the node:http server does not serve the response byte for byte');
  const nodeStatic = load(`http://127.0.0.1:${bare.port}`, 'get', ourFiles.get);
  await stops.pop()!();

  const errors = (r: WrkResult) => `${r.non2xx} non-2xx, ${r.socketErrors} socket`;
  const row = (name: string, r: WrkResult | null, note = '') =>
    console.log(
      `${name.padEnd(40)} ${r === null ? '       —' : r.rate.toFixed(0).padStart(8)}/s  ${r === null ? '      —' : `${r.p99Ms.toFixed(2).padStart(7)} ms`}  ${r === null ? '' : errors(r)}${note}`,
    );
  console.log(
    `\nShortleaf OCSP benchmark (${new Date().toISOString()}, ${process.version}, ${LEAVES} leaves, wrk -t1 -c${CONNECTIONS} -d${SECONDS}s)\n`,
  );
  console.log(`${'server'.padEnd(40)} ${'responses'.padStart(10)}  ${'p99'.padStart(10)}  errors`);
  row('Shortleaf POST /ocsp (cached)', ourPost);
  row('Shortleaf GET /ocsp/<base64> (cached)', ourGet);
  row('Shortleaf POST, retired intermediate', retired.result, '  (after a rotation, same leaves)');
  row('OpenSSL responder POST (signs each)', opensslPost);
  if (opensslGet !== null) row('OpenSSL responder GET (signs each)', opensslGet);
  for (const n of nginx) row(`nginx static file, GET, ${n.workers} worker${n.workers === '1' ? '' : 's'}`, n.result);
  row('bare node:http, same bytes, GET', nodeStatic, '  (reference: a Node responder at best)');

  const best = ourPost.rate >= ourGet.rate ? { how: 'POST', r: ourPost } : { how: 'GET', r: ourGet };
  const nginx1 = nginx.find((n) => n.workers === '1')!.result;
  const nginxAuto = nginx.find((n) => n.workers === 'auto')!.result;
  const opensslBest =
    opensslGet !== null && (opensslPost === null || opensslGet.rate > opensslPost.rate)
      ? { how: 'GET', r: opensslGet }
      : opensslPost === null
        ? null
        : { how: 'POST', r: opensslPost };
  console.log('');
  if (opensslBest !== null)
    console.log(
      `Shortleaf ${best.how} / OpenSSL responder ${opensslBest.how}: ${(best.r.rate / opensslBest.r.rate).toFixed(2)}×   (goal ≥ 5×)`,
    );
  console.log(
    `Shortleaf ${best.how} / bare node:http with the same bytes: ${(best.r.rate / nodeStatic.rate).toFixed(2)}×   (bare node:http / nginx 1 worker: ${(nodeStatic.rate / nginx1.rate).toFixed(2)}×)`,
  );
  console.log(
    `Shortleaf ${best.how} / nginx static, 1 worker: ${(best.r.rate / nginx1.rate).toFixed(2)}×   (goal ≥ 0.5×; ${(best.r.rate / nginxAuto.rate).toFixed(2)}× nginx with worker_processes auto)`,
  );
  const cpuLine = (c: { user: number; system: number }) =>
    `${(c.user + c.system).toFixed(3)} ms (user ${c.user.toFixed(3)}, kernel ${c.system.toFixed(3)})`;
  console.log(
    `Shortleaf server CPU per response, from /proc: POST ${cpuLine(post)}; GET ${cpuLine(get)}; POST for the retired intermediate ${cpuLine(retired)}`,
  );
  console.log(
    `Shortleaf POST for a retired intermediate's leaves / for the active one's, before the rotation: ${(retired.result.rate / ourPost.rate).toFixed(2)}×`,
  );
  console.log('\nnotes:');
  console.log(
    `- Every server's responses were verified with \`openssl ocsp -respin\` ("Response verify OK", status good) before timing; Shortleaf's all ${LEAVES} by POST and GET.`,
  );
  console.log(
    `- OpenSSL answers for its own throwaway CA (root → ${LEAVES} leaves, delegated P-256 responder certificate): Shortleaf's intermediate key is sealed. It signs every response, closes the connection after each (no keep-alive in OpenSSL 3.0's responder, so wrk reconnects), runs as -multi 2 and, since -port binds every interface, in a private network namespace with only loopback. Each of its runs gets a fresh responder and no warm-up: its workers spin, answering nothing, once a client drops a connection mid-request (wrk stopping) or after a 400.`,
  );
  console.log(
    `- nginx serves one of Shortleaf's pre-signed responses (leaf 0) for every GET path: access_log off, keepalive_requests 1000000; worker_processes 1 is the like-for-like row (Shortleaf is one node process), auto = ${availableParallelism()} here. This machine has ${availableParallelism()} cores and wrk takes one of them, so figures move between runs.`,
  );
  console.log(
    `- "best" Shortleaf is its faster of POST and GET in this run. Shortleaf ran first and alone; each other server ran alone after it. "bare node:http" answers every request with the same bytes and nothing else: what a Node responder could reach here.`,
  );
  for (const note of notes) console.log(`- ${note}`);

  if (PROFILE) {
    const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) console.log('\nno CPU profile was written');
    else {
      for (const w of windows) {
        console.log(
          `\nwhere the server's CPU went during the Shortleaf ${w.what} runs (node --cpu-prof${pin ? ', server pinned to CPU 0 and wrk to CPU 1' : ''}; the profiler slows it):\n${summarizeCpuProfile(join(profileDir, file), w.from, w.to, 12)}`,
        );
      }
    }
  }
} finally {
  await cleanUp();
}
