// HAProxy (Debian's package) in front of several `shortleaf serve` instances, as an operator runs
// it: a config generated per test in its own folder, on loopback ports chosen by the test, one
// foreground process under the harness (`haproxy -db`), its traffic log read from stdout, and the
// state of every server from its stats page.
//
// Three front doors, because the three kinds of traffic need different things from a balancer:
//  - api (mode tcp, TLS passthrough): the agent renews over mutual TLS (`/api/v1/renew`) with its
//    client certificate, which only the instance can see if the TLS session ends there. A proxy
//    that terminated TLS would have to re-present the client's certificate in a header the CA
//    would then have to trust; passthrough keeps the CA's own TLS check the only one. Balancing is
//    per connection: a client that keeps its connection alive stays on one instance.
//  - acme (mode http, TLS terminated with a certificate from our CA, re-encrypted to the
//    instances): ACME needs no client certificate (every request is a JWS), so an operator can
//    let the balancer read it, and then every request is balanced on its own. certbot (python
//    requests) and lego (Go net/http) keep their connection alive for a whole order; through the
//    passthrough door every order would run on one instance and prove nothing about shared nonces,
//    orders and authorizations. In HTTP mode HAProxy balances each request of a kept-alive client
//    connection anew (roundrobin), keeping its own idle connections to the instances for reuse, so
//    `option http-server-close` (a new TLS handshake to an instance per request) is not needed:
//    checked by hand (curl with six URLs on one connection: i1,i2,i3,i1,i2,i3) and by the test in
//    this log. The certificate it terminates with is a leaf for `localhost` from the CA itself, as
//    an operator would get one for the balancer.
//  - status (mode http, plain): OCSP and CRLs are plain HTTP; balanced per request like ACME.
// Health checks are HTTP (`GET /health`, TLS for the API ports) every 500 ms, two failures to go
// down, so a killed instance is out within about a second; `retries` with `option redispatch` send
// a connection that an instance refused to another one instead of failing it. /health answers
// without the database, so a PostgreSQL outage leaves every instance in: the instances themselves
// answer 503 problem documents then, which is what the test checks clients receive.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, track } from './cli.js';
import { captureOutput } from './secret-log.js';
import { request } from './http.js';
import { freePort, pollUntil } from './server.js';

/** Where Debian installs haproxy (CI installs the package in .ci/run). */
export const HAPROXY = existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy';

/** One `shortleaf serve` behind the balancer. */
export interface BalancedInstance {
  /** The server's name in HAProxy's config, stats and log (letters, digits, `-`). */
  name: string;
  /** Its HTTPS API port on 127.0.0.1. */
  apiPort: number;
  /** Its plain-HTTP status port on 127.0.0.1. */
  statusPort: number;
}

/** The balancer's own loopback ports. */
export interface BalancerPorts {
  api: number;
  acme: number;
  status: number;
  stats: number;
}

export interface BalancerSetup {
  /** Config, the ACME front door's certificate and nothing else live here. */
  dir: string;
  ports: BalancerPorts;
  instances: readonly BalancedInstance[];
  /** PEM roots the instances' HTTPS certificates chain to: health checks and re-encryption verify them. */
  instanceCa: string;
  /** The name the instances' certificates carry, sent as SNI and checked (verifyhost). */
  instanceName: string;
  /** PEM file with the ACME front door's certificate, its intermediates and its key (HAProxy's `crt`). */
  acmeCertificate: string;
}

/** The URLs clients are given: the balancer's, never an instance's. */
export interface BalancerUrls {
  /** https://localhost:PORT: the instances' `publicUrl` (token audiences), TLS passthrough. */
  api: string;
  /** https://localhost:PORT, TLS ended at the balancer: the ACME clients' origin. */
  acme: string;
  /** http://127.0.0.1:PORT: the instances' `statusUrl`, embedded in every leaf (OCSP, CRL, caIssuers). */
  status: string;
}

export const balancerUrls = (ports: BalancerPorts): BalancerUrls => ({
  api: `https://localhost:${ports.api}`,
  acme: `https://localhost:${ports.acme}`,
  status: `http://127.0.0.1:${ports.status}`,
});

/**
 * Free loopback ports for the balancer, picked before the instances start: the instances embed
 * the balancer's addresses (publicUrl, statusUrl), so these are known first.
 */
export async function reserveBalancerPorts(): Promise<BalancerPorts> {
  const ports = new Set<number>();
  while (ports.size < 4) ports.add(await freePort());
  const [api, acme, status, stats] = [...ports] as [number, number, number, number];
  return { api, acme, status, stats };
}

// One line per request (http) or connection (tcp), space-separated, the User-Agent last since it
// may hold spaces. %s is the server that answered (<NOSRV> when none could); %tsc / %ts is the
// termination state ("--" for a normal end; "SC" a refused connection, "sD" a server that died).
const HTTP_LOG = 'SLHA http %ft %b %s %ST %tsc %HM %HP %[capture.req.hdr(0)]';
const TCP_LOG = 'SLHA tcp %ft %b %s %ts %B %Tt';

/** The haproxy.cfg for a setup; exported so a failing test can print what it ran. */
export function haproxyConfig(s: BalancerSetup): string {
  const verify = `verify required ca-file ${s.instanceCa} verifyhost ${s.instanceName}`;
  const servers = (port: (i: BalancedInstance) => number, extra: string) =>
    s.instances.map((i) => `  server ${i.name} 127.0.0.1:${port(i)} ${extra}`.trimEnd()).join('\n');
  return `# generated by test/helpers/haproxy.ts
global
  log stdout format raw local0 info
  maxconn 4096
  # Ports and files are the test's: no user switch, no chroot.

defaults
  log global
  option dontlognull
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout check 2s
  timeout http-request 10s
  # A connection an instance refuses (it was just killed) is retried, then sent to another one.
  retries 2
  option redispatch 1
  default-server inter 500 fastinter 250 downinter 500 rise 2 fall 2

# Mutual-TLS API: the TLS session ends at the instance, which sees the client certificate itself.
frontend api
  mode tcp
  bind 127.0.0.1:${s.ports.api}
  log-format "${TCP_LOG}"
  default_backend api

backend api
  mode tcp
  balance roundrobin
  # The health check alone is TLS (check-ssl); the traffic passes through untouched.
  option httpchk GET /health
  http-check send hdr Host localhost
  http-check expect status 200
${servers((i) => i.apiPort, `check check-ssl check-sni ${s.instanceName} ${verify}`)}

# ACME: TLS ends here and every request is balanced on its own.
frontend acme
  mode http
  bind 127.0.0.1:${s.ports.acme} ssl crt ${s.acmeCertificate}
  http-request capture req.hdr(User-Agent) len 100
  log-format "${HTTP_LOG}"
  default_backend acme

backend acme
  mode http
  balance roundrobin
  # A request on a kept-alive connection to an instance that dies before answering is sent again
  # to another one (HAProxy would otherwise close the client's connection without an answer).
  # Safe for ACME: every request is a JWS with a single-use nonce, so a resent request the dead
  # instance had already handled is refused (badNonce), never done twice.
  retry-on conn-failure empty-response
  option httpchk GET /health
  http-check send hdr Host localhost
  http-check expect status 200
${servers((i) => i.apiPort, `check ssl sni str(${s.instanceName}) ${verify}`)}

# OCSP and CRLs, plain HTTP, balanced per request.
frontend status
  mode http
  bind 127.0.0.1:${s.ports.status}
  http-request capture req.hdr(User-Agent) len 100
  log-format "${HTTP_LOG}"
  default_backend status

backend status
  mode http
  balance roundrobin
  # OCSP and CRL requests only read: resending one is always safe.
  retry-on conn-failure empty-response
  option httpchk GET /health
  http-check send hdr Host 127.0.0.1
  http-check expect status 200
${servers((i) => i.statusPort, 'check')}

frontend stats
  mode http
  no log
  bind 127.0.0.1:${s.ports.stats}
  stats enable
  stats uri /stats
`;
}

/** One request through an HTTP door, logged when it ended, with the moment the test read it. */
export interface HttpLogLine {
  kind: 'http';
  at: number;
  frontend: string;
  backend: string;
  /** The instance that answered, or `<NOSRV>`. */
  server: string;
  status: number;
  termination: string;
  method: string;
  path: string;
  userAgent: string;
}

/** One connection through the TCP door, logged when it closed. */
export interface TcpLogLine {
  kind: 'tcp';
  at: number;
  frontend: string;
  backend: string;
  server: string;
  termination: string;
  bytes: number;
  ms: number;
}

export type BalancerLogLine = HttpLogLine | TcpLogLine;

/** The HTTP-door lines of a log. */
export const httpLines = (log: readonly BalancerLogLine[]): HttpLogLine[] =>
  log.filter((l): l is HttpLogLine => l.kind === 'http');

function parseLogLine(line: string, at: number): BalancerLogLine | null {
  const f = line.split(' ');
  if (f[0] !== 'SLHA') return null;
  if (f[1] === 'http' && f.length >= 9)
    return {
      kind: 'http',
      at,
      frontend: f[2]!.replace(/~$/, ''),
      backend: f[3]!,
      server: f[4]!,
      status: Number(f[5]),
      termination: f[6]!,
      method: f[7]!,
      path: f[8]!,
      userAgent: f.slice(9).join(' '),
    };
  if (f[1] === 'tcp' && f.length >= 8)
    return {
      kind: 'tcp',
      at,
      frontend: f[2]!,
      backend: f[3]!,
      server: f[4]!,
      termination: f[5]!,
      bytes: Number(f[6]),
      ms: Number(f[7]),
    };
  return null;
}

/** A server's state as HAProxy's stats page reports it. */
export interface ServerState {
  backend: string;
  server: string;
  /** "UP", "DOWN", "UP 1/2" (going down), "DOWN 1/2" (coming up), "MAINT", … */
  status: string;
}

export interface RunningBalancer {
  setup: BalancerSetup;
  urls: BalancerUrls;
  child: ChildProcess;
  /** Everything haproxy printed (warnings, server state changes, traffic log). */
  output(): string;
  /** The traffic log so far, oldest first. */
  log(): BalancerLogLine[];
  /** Every server of every backend, from the stats page. */
  servers(): Promise<ServerState[]>;
  /** Polls the stats page until `instance` is `UP` or `DOWN` in every backend; resolves with the ms it took. */
  waitForInstance(instance: string, state: 'UP' | 'DOWN', timeoutMs: number): Promise<number>;
  exited(): boolean;
  /** SIGTERM (haproxy's hard stop), then SIGKILL after 5 s. Safe to call twice. */
  stop(): Promise<void>;
}

/** `GET /stats;csv` parsed: the pxname, svname and status columns of every server row. */
async function readServers(statsPort: number): Promise<ServerState[]> {
  const res = await request(`http://127.0.0.1:${statsPort}/stats;csv`, { timeoutMs: 5_000 });
  if (res.status !== 200) throw new Error(`haproxy stats: HTTP ${res.status}`);
  const [header = '', ...rows] = res.text.trim().split('\n');
  const cols = header.replace(/^# /, '').split(',');
  const col = (name: string) => cols.indexOf(name);
  const [px, sv, st] = [col('pxname'), col('svname'), col('status')];
  return rows
    .map((r) => r.split(','))
    .filter((r) => r[sv] !== 'FRONTEND' && r[sv] !== 'BACKEND' && r[px] !== 'stats')
    .map((r) => ({ backend: r[px]!, server: r[sv]!, status: r[st]! }));
}

/**
 * Writes the config, checks it (`haproxy -c`), starts haproxy in the foreground and resolves once
 * every instance is UP in every backend. On failure haproxy is stopped and the error carries its
 * output and config.
 */
export async function startBalancer(setup: BalancerSetup, opts: { timeoutMs?: number } = {}): Promise<RunningBalancer> {
  mkdirSync(setup.dir, { recursive: true });
  const cfg = join(setup.dir, 'haproxy.cfg');
  const config = haproxyConfig(setup);
  writeFileSync(cfg, config);
  const check = await run(HAPROXY, ['-c', '-f', cfg], { timeoutMs: 15_000 });
  if (check.code !== 0) throw new Error(`haproxy -c refused the config:\n${check.stdout}${check.stderr}\n${config}`);

  const child = track(HAPROXY, ['-f', cfg, '-db'], {});
  child.stdin!.end();
  // Its traffic log (paths, agents, servers) joins the secret scan like every process's output.
  captureOutput(child, 'haproxy', { stdout: true });
  let output = '';
  let pending = '';
  const log: BalancerLogLine[] = [];
  const onData = (d: Buffer) => {
    const at = Date.now();
    const text = d.toString();
    output += text;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const parsed = parseLogLine(line.trim(), at);
      if (parsed !== null) log.push(parsed);
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));

  const servers = () => readServers(setup.ports.stats);
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      exit,
      new Promise<void>((r) => (timer = setTimeout(() => (child.kill('SIGKILL'), r()), 5_000))),
    ]);
    clearTimeout(timer);
    await exit;
  };
  const waitForInstance = async (instance: string, state: 'UP' | 'DOWN', timeoutMs: number) => {
    const started = Date.now();
    await pollUntil(
      `haproxy to report ${instance} ${state} in every backend`,
      async () => {
        if (exited) throw new Error(`haproxy exited:\n${output}`);
        const rows = (await servers()).filter((r) => r.server === instance);
        if (rows.length === 0) throw new Error(`haproxy has no server ${instance}`);
        return rows.every((r) => r.status === state) ? true : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
    return Date.now() - started;
  };

  try {
    for (const i of setup.instances) await waitForInstance(i.name, 'UP', opts.timeoutMs ?? 20_000);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\nhaproxy output:\n${output}\nconfig:\n${config}`);
  }
  return {
    setup,
    urls: balancerUrls(setup.ports),
    child,
    output: () => output,
    log: () => log,
    servers,
    waitForInstance,
    exited: () => exited,
    stop,
  };
}
