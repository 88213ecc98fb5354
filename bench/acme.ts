/**
 * `pnpm bench:acme`: certificates issued end to end over ACME (RFC 8555) by one client, the npm
 * `acme-client`, configured the same against both servers: new order, http-01 challenge answered
 * by a responder in this process and validated for real by the server, finalize, download. CERTS
 * certificates one at a time, then CERTS with IN_FLIGHT orders in flight, against Shortleaf and, in
 * the same run, against Debian's Pebble (no VA sleeps, no rejected nonces). Each server runs alone.
 *
 * On a 2-core machine the client is the bottleneck, so certificates/s says little about the
 * server; the figure that matters is the server's own CPU time per certificate, read from /proc for
 * its PID before and after each run. Prints it for both servers and the ratio; asserts nothing.
 * Every issued certificate is checked afterwards: it names what was ordered and chains to the
 * server's root.
 *
 * `--only pebble` or `--only shortleaf` measures one server. BENCH_CERTS (default 50) and
 * BENCH_IN_FLIGHT (default 8) size the runs.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Agent } from 'node:https';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, axios as acmeAxios, crypto as acmeCrypto, setLogger } from 'acme-client';
import { startPebble } from './pebble.js';
import { cpuMs, cpuTimes, startServer } from './server.js';
import { benchWorkspace } from './workspace.js';

const CERTS = Number(process.env.BENCH_CERTS ?? 50);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 8);
const WARM = Number(process.env.BENCH_WARM ?? 3);
const GOAL = 0.5;
/** The whole benchmark stops by itself after this long. */
const DEADLINE_MS = 15 * 60_000;

type ServerName = 'shortleaf' | 'pebble';
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt === -1 ? undefined : process.argv[onlyAt + 1];
if (only !== undefined && only !== 'shortleaf' && only !== 'pebble')
  throw new Error(`--only takes shortleaf or pebble, not ${only}`);
const SERVERS: ServerName[] = only === undefined ? ['shortleaf', 'pebble'] : [only];

/** A running ACME server, as the benchmark needs to see it. */
interface AcmeServer {
  name: string;
  directoryUrl: string;
  /** What the client trusts for the server's HTTPS. */
  httpsCa: string;
  /** The issuing root, to check the chains it sends. */
  rootPem: string;
  pid: number;
  /** Processes the server needs besides its own (Pebble's DNS), measured apart from it. */
  helpers: Array<{ name: string; pid: number }>;
  stop(): Promise<void>;
}

/**
 * Shortleaf: `shortleaf serve` on free ports, its `acme` provisioner validating http-01 against
 * this process's responder, with every benchmark name pinned to 127.0.0.1 (no DNS). All of the
 * Shortleaf-specific contract is here: the config file, the directory URL and where the root is.
 */
async function startShortleaf(work: string, httpPort: number, names: string[]): Promise<AcmeServer> {
  const configFile = join(work, 'shortleaf-acme.json');
  // One account orders WARM + 2 × CERTS certificates within a minute or so: under the `acme`
  // provisioner's default ordersPerHour (300); raise it if the defaults change.
  const config = { acme: { validation: { httpPort, hosts: Object.fromEntries(names.map((n) => [n, '127.0.0.1'])) } } };
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const server = await startServer({
    serveArgs: ['--config', configFile],
    ...(process.env.BENCH_PROF ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF] } : {}),
  });
  const rootPem = readFileSync(join(server.dataDir, 'offline-root', 'root.crt'), 'utf8');
  return {
    name: 'Shortleaf',
    directoryUrl: `${server.publicUrl}/acme/acme/directory`,
    httpsCa: rootPem,
    rootPem,
    pid: server.pid,
    helpers: [],
    stop: server.stop,
  };
}

async function startPebbleServer(work: string, httpPort: number): Promise<AcmeServer> {
  const pebble = await startPebble(work, httpPort);
  return {
    name: 'Pebble',
    directoryUrl: pebble.directoryUrl,
    httpsCa: pebble.httpsCa,
    rootPem: pebble.rootPem,
    pid: pebble.pid,
    helpers: [{ name: 'pebble-challtestsrv (its DNS)', pid: pebble.dnsPid }],
    stop: pebble.stop,
  };
}

/** What the client did that a plain run would not show (from acme-client's own log), and the server's fetches of challenges. */
const counters = { requests: 0, badNonces: 0, validations: 0 };
acmeAxios.interceptors.request.use((config) => {
  counters.requests++;
  return config;
});
setLogger((message) => {
  if (message.startsWith('Caught invalid nonce error')) counters.badNonces++;
});
// Errors show up rather than hide behind long waits: no retry of a 5xx or 429 (acme-client would
// honour a Retry-After of an hour), and status polling from 50 ms, doubling to 1 s, at most 12 times.
(acmeAxios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
acmeAxios.defaults.timeout = 30_000;
const BACKOFF = { backoffMin: 50, backoffMax: 1000, backoffAttempts: 12 };

/** The http-01 responder (RFC 8555 §8.3): key authorizations by token, on 127.0.0.1. */
async function startResponder(): Promise<{ port: number; tokens: Map<string, string>; stop(): Promise<void> }> {
  const tokens = new Map<string, string>();
  const prefix = '/.well-known/acme-challenge/';
  const server = createServer((req, res) => {
    const keyAuthorization =
      req.url?.startsWith(prefix) === true ? tokens.get(req.url.slice(prefix.length)) : undefined;
    if (keyAuthorization === undefined) return void res.writeHead(404).end();
    counters.validations++;
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(keyAuthorization);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the responder has no port');
  return {
    port: address.port,
    tokens,
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface Order {
  name: string;
  csr: Buffer;
}

interface Run {
  mode: string;
  certs: number;
  seconds: number;
  /** Server CPU, ms per certificate. */
  user: number;
  system: number;
  /** CPU of the server's helper processes, ms per certificate. */
  helpers: number;
  /** This process's CPU (acme-client and the responder), ms per certificate. */
  client: number;
  requests: number;
  /** http-01 fetches the responder answered, per certificate. */
  validations: number;
  badNonces: number;
}

/** Runs `fn` over `items` with at most `n` in flight. */
async function inFlight<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * Checks an issued chain: the leaf names what was ordered, each certificate is signed by the next,
 * and the last is the root or signed by it.
 */
function checkChain(pem: string, name: string, rootPem: string): string | null {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return 'no certificate in the response';
  const certs = blocks.map((b) => new X509Certificate(b));
  const root = new X509Certificate(rootPem);
  const leaf = certs[0]!;
  if (!(leaf.subjectAltName ?? '').split(', ').includes(`DNS:${name}`))
    return `the leaf names ${leaf.subjectAltName ?? 'nothing'}, not ${name}`;
  const chain = certs.at(-1)!.fingerprint256 === root.fingerprint256 ? certs : [...certs, root];
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i]!.checkIssued(chain[i + 1]!) || !chain[i]!.verify(chain[i + 1]!.publicKey))
      return `certificate ${i} (${chain[i]!.subject.trim()}) is not signed by ${chain[i + 1]!.subject.trim()}`;
  }
  return null;
}

/** Warms up, then issues CERTS certificates one at a time and CERTS with IN_FLIGHT in flight. */
async function benchServer(server: AcmeServer, orders: Order[], tokens: Map<string, string>): Promise<Run[]> {
  const agent = new Agent({ ca: server.httpsCa, keepAlive: true });
  acmeAxios.defaults.httpsAgent = agent;
  try {
    const client = new Client({
      directoryUrl: server.directoryUrl,
      accountKey: await acmeCrypto.createPrivateEcdsaKey(),
      ...BACKOFF,
    });
    const issued = new Map<string, string>();
    const issue = async ({ name, csr }: Order) => {
      const pem = await client.auto({
        csr,
        termsOfServiceAgreed: true,
        challengePriority: ['http-01'],
        // acme-client would fetch the challenge itself first, resolving the name through the
        // system's DNS: the names only resolve inside the servers.
        skipChallengeVerification: true,
        challengeCreateFn: async (_authz, challenge, keyAuthorization) =>
          void tokens.set(challenge.token, keyAuthorization),
        challengeRemoveFn: async (_authz, challenge) => void tokens.delete(challenge.token),
      });
      issued.set(name, pem);
    };
    // The first order registers the account; the warm-up leaves JIT, pools and caches as in use.
    await inFlight(orders.slice(0, WARM), 1, issue);
    const runs: Run[] = [];
    for (const [mode, n, batch] of [
      ['sequential', 1, orders.slice(WARM, WARM + CERTS)],
      [`${IN_FLIGHT} in flight`, IN_FLIGHT, orders.slice(WARM + CERTS, WARM + 2 * CERTS)],
    ] as const) {
      const c0 = { ...counters };
      const helpers0 = server.helpers.reduce((sum, h) => sum + cpuMs(h.pid), 0);
      const before = cpuTimes(server.pid);
      const client0 = process.cpuUsage();
      const t0 = performance.now();
      await inFlight([...batch], n, issue);
      const seconds = (performance.now() - t0) / 1000;
      const client1 = process.cpuUsage(client0);
      const after = cpuTimes(server.pid);
      const helpers1 = server.helpers.reduce((sum, h) => sum + cpuMs(h.pid), 0);
      const per = (x: number) => x / batch.length;
      runs.push({
        mode,
        certs: batch.length,
        seconds,
        user: per(after.user - before.user),
        system: per(after.system - before.system),
        helpers: per(helpers1 - helpers0),
        client: per((client1.user + client1.system) / 1000),
        requests: per(counters.requests - c0.requests),
        validations: per(counters.validations - c0.validations),
        badNonces: counters.badNonces - c0.badNonces,
      });
    }
    for (const { name } of orders) {
      const failure = checkChain(issued.get(name) ?? '', name, server.rootPem);
      if (failure !== null) throw new Error(`${server.name}'s certificate for ${name}: ${failure}`);
    }
    return runs;
  } finally {
    agent.destroy();
  }
}

const { work, stops, cleanUp } = benchWorkspace('shortleaf-acme-bench-');
setTimeout(() => {
  console.error(`bench:acme: not finished after ${DEADLINE_MS / 60_000} minutes; stopping`);
  void cleanUp().finally(() => process.exit(1));
}, DEADLINE_MS).unref();
try {
  const responder = await startResponder();
  stops.push(responder.stop);
  // Distinct names, so no server can reuse an authorization; the same CSRs for both servers.
  const names = Array.from({ length: WARM + 2 * CERTS }, (_, i) => `b${i + 1}.test`);
  const orders: Order[] = [];
  for (const name of names)
    orders.push({
      name,
      csr: (
        await acmeCrypto.createCsr({ commonName: name, altNames: [name] }, await acmeCrypto.createPrivateEcdsaKey())
      )[1],
    });

  const results: Array<{ server: string; runs: Run[]; helpers: string[] } | { server: string; error: string }> = [];
  for (const which of SERVERS) {
    const label = which === 'shortleaf' ? 'Shortleaf' : 'Pebble';
    try {
      const server =
        which === 'shortleaf'
          ? await startShortleaf(work, responder.port, names)
          : await startPebbleServer(work, responder.port);
      stops.push(server.stop);
      try {
        results.push({
          server: server.name,
          runs: await benchServer(server, orders, responder.tokens),
          helpers: server.helpers.map((h) => h.name),
        });
      } finally {
        stops.splice(stops.indexOf(server.stop), 1);
        await server.stop();
      }
    } catch (err) {
      results.push({ server: label, error: (err as Error).message.split('\n').slice(0, 3).join(' ') });
    }
  }

  console.log(
    `\nShortleaf ACME benchmark (${new Date().toISOString()}, ${process.version}, acme-client 5.4.0, ${CERTS} certificates per run after ${WARM} to warm up, ${availableParallelism()} cores)\n`,
  );
  console.log(
    `${'server'.padEnd(10)} ${'run'.padEnd(12)} ${'wall'.padStart(7)} ${'certs/s'.padStart(8)}  ${'server CPU/cert (user + kernel)'.padEnd(32)} ${'req/cert'.padStart(8)} ${'client CPU/cert'.padStart(16)}`,
  );
  for (const r of results) {
    if ('error' in r) {
      console.log(`${r.server.padEnd(10)} not measured: ${r.error}`);
      continue;
    }
    for (const run of r.runs) {
      const cpu = `${(run.user + run.system).toFixed(2).padStart(6)} ms (${run.user.toFixed(2)} + ${run.system.toFixed(2)})`;
      console.log(
        `${r.server.padEnd(10)} ${run.mode.padEnd(12)} ${`${run.seconds.toFixed(2)} s`.padStart(7)} ${(run.certs / run.seconds).toFixed(1).padStart(8)}  ${cpu.padEnd(32)} ${run.requests.toFixed(1).padStart(8)} ${`${run.client.toFixed(1)} ms`.padStart(16)}`,
      );
    }
  }
  const measured = results.filter((r): r is { server: string; runs: Run[]; helpers: string[] } => 'runs' in r);
  const ours = measured.find((r) => r.server === 'Shortleaf');
  const pebble = measured.find((r) => r.server === 'Pebble');
  console.log('');
  if (ours !== undefined && pebble !== undefined) {
    const ratios = ours.runs.map((run, i) => {
      const theirs = pebble.runs[i]!;
      return `${run.mode} ${((run.user + run.system) / (theirs.user + theirs.system)).toFixed(2)}×`;
    });
    console.log(`Shortleaf / Pebble, server CPU per certificate: ${ratios.join(', ')}   (goal ≤ ${GOAL}×)`);
  } else
    console.log(
      `Shortleaf / Pebble: needs both servers measured (goal ≤ ${GOAL}× Pebble's server CPU per certificate)`,
    );
  console.log('\nnotes:');
  console.log(
    `- Server CPU is user + kernel time of the server's process from /proc/PID/stat, read before and after each run (10 ms ticks), divided by the certificates issued; it counts everything the server did in the window: ACME requests, http-01 validation, signing, storage, logging.`,
  );
  console.log(
    `- Client: acme-client's auto() per certificate (HEAD new-nonce before every signed request, as it does; status polled from 50 ms, doubling), ECDSA P-256 account and certificate keys, CSRs made before timing, its own challenge self-check off. "client CPU/cert" is this whole process (acme-client and the http-01 responder): on ${availableParallelism()} cores it, not the server, sets certs/s.`,
  );
  for (const r of measured) {
    const badNonces = r.runs.reduce((sum, run) => sum + run.badNonces, 0);
    console.log(
      `- ${r.server} fetched ${r.runs.map((run) => `${run.validations.toFixed(1)}`).join(' and ')} http-01 responses per certificate in the timed runs (validation is real).`,
    );
    if (badNonces > 0)
      console.log(`- ${r.server}: the client retried ${badNonces} requests after a badNonce during the timed runs.`);
    for (const [i, h] of r.helpers.entries())
      console.log(
        `- ${r.server} also ran ${h}: ${r.runs.map((run) => `${run.mode} ${run.helpers.toFixed(2)} ms/cert`).join(', ')}; not in its figure${i === 0 && r.server === 'Pebble' ? ' (Shortleaf maps the names to 127.0.0.1 in its config instead of asking a DNS server)' : ''}.`,
      );
  }
  if (pebble !== undefined)
    console.log(
      `- Pebble: Debian's build, PEBBLE_VA_NOSLEEP=1, PEBBLE_WFE_NONCEREJECT=0, real http-01 validation against this process's responder (its VA fetches every challenge 3 times at once, standing in for several vantage points); it signs with an RSA-2048 intermediate and logs every request to stdout (drained here), as shipped.`,
    );
  for (const r of measured)
    console.log(
      `- ${r.server}: all ${WARM + 2 * CERTS} certificates checked: the leaf names what was ordered and the chain verifies to its root.`,
    );
  if (results.some((r) => 'error' in r)) process.exitCode = 1;
} finally {
  await cleanUp();
}
