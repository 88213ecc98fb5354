import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { freePort, spawnGroup, waitForOutput, type Spawned } from './server.js';

export interface PebbleServer {
  directoryUrl: string;
  /** The self-signed certificate Pebble serves HTTPS with: what a client must trust to reach it. */
  httpsCa: string;
  /** Pebble's issuing root (regenerated at every start), from its management interface. */
  rootPem: string;
  /** Pebble's own process. */
  pid: number;
  /** pebble-challtestsrv, Pebble's DNS: every name resolves to 127.0.0.1. */
  dnsPid: number;
  stop(): Promise<void>;
}

/** GET over HTTPS, trusting `ca` only. */
export function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(text) : reject(new Error(`${url}: ${res.statusCode} ${text}`)),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Starts Debian's Pebble for real http-01 validation against a responder on 127.0.0.1:`httpPort`,
 * with pebble-challtestsrv as its DNS server answering 127.0.0.1 for every name (no AAAA, so
 * Pebble never tries ::1 first) and its own challenge listeners off. No VA sleeps and no rejected
 * nonces, as the benchmark needs. Debian strips Pebble's test certificates, so its HTTPS
 * certificate is made here: one self-signed P-256 certificate for 127.0.0.1, which the client
 * trusts directly.
 */
export async function startPebble(dir: string, httpPort: number): Promise<PebbleServer> {
  const run = spawnSync(
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
      'pebble-https.key',
      '-out',
      'pebble-https.pem',
      '-subj',
      '/CN=bench Pebble HTTPS',
      '-days',
      '2',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  if (run.status !== 0) throw new Error(`openssl req failed: ${run.stderr}`);
  const httpsCa = readFileSync(join(dir, 'pebble-https.pem'), 'utf8');
  const [acmePort, managementPort, dnsPort, dnsManagementPort, tlsPort] = await distinctFreePorts(5, [httpPort]);
  writeFileSync(
    join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: join(dir, 'pebble-https.pem'),
        privateKey: join(dir, 'pebble-https.key'),
        httpPort,
        // tls-alpn-01 is offered but never chosen: the client asks for http-01.
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  const started: Spawned[] = [];
  const stop = async () => {
    for (const s of started.reverse()) await s.stop();
  };
  try {
    const dns = spawnGroup(
      'pebble-challtestsrv',
      [
        '-defaultIPv4',
        '127.0.0.1',
        '-defaultIPv6',
        '',
        '-dns01',
        `127.0.0.1:${dnsPort}`,
        '-http01',
        '',
        '-https01',
        '',
        '-tlsalpn01',
        '',
        '-management',
        `127.0.0.1:${dnsManagementPort}`,
      ],
      dir,
    );
    started.push(dns);
    await waitForOutput(dns, /Starting challenge servers/, 'pebble-challtestsrv');
    // `env` execs Pebble, so the PID is Pebble's own.
    const pebble = spawnGroup(
      'env',
      [
        'PEBBLE_VA_NOSLEEP=1',
        'PEBBLE_WFE_NONCEREJECT=0',
        'pebble',
        '-config',
        join(dir, 'pebble.json'),
        '-dnsserver',
        `127.0.0.1:${dnsPort}`,
      ],
      dir,
    );
    started.push(pebble);
    await waitForOutput(pebble, /ACME directory available at/, 'Pebble');
    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    // Pebble prints the line before it binds: wait until it answers.
    for (let i = 0; ; i++) {
      const ok = await httpsGet(directoryUrl, httpsCa).then(
        () => true,
        () => false,
      );
      if (ok) break;
      if (i > 50 || pebble.child.exitCode !== null) throw new Error(`Pebble did not start: ${pebble.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const rootPem = await httpsGet(`https://127.0.0.1:${managementPort}/roots/0`, httpsCa);
    return { directoryUrl, httpsCa, rootPem, pid: pebble.child.pid!, dnsPid: dns.child.pid!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** `n` free ports, none of them in `taken` nor the same twice. */
async function distinctFreePorts(n: number, taken: number[]): Promise<number[]> {
  const ports = new Set(taken);
  const out: number[] = [];
  while (out.length < n) {
    const p = await freePort();
    if (ports.has(p)) continue;
    ports.add(p);
    out.push(p);
  }
  return out;
}
