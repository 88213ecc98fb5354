// `shortleaf agent` under the harness: a running agent whose JSON log lines a test can wait on,
// the files it keeps, and the small servers and checks the agent tests share.
import type { ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { basename, dirname, join } from 'node:path';
import { DEFAULT_TIMEOUT_MS, run, shortleafArgs, shortleafOk, track, type RunResult } from './cli.js';
import { request } from './http.js';
import { NGINX } from './nginx.js';
import {
  handshakeCertificates,
  openssl,
  opensslResult,
  publicKeyOfCert,
  publicKeyOfKey,
  splitCertificates,
} from './openssl.js';
import { normalizeSerial } from './revocation.js';

/** One JSON line the agent logged on stderr. */
export type AgentLog = Record<string, unknown> & { event: string; level: string };

/** `node --import tsx …` arguments: through `shortleaf agent`, or the standalone agent (starts faster). */
export const agentArgs = (args: readonly string[], standalone = false): string[] =>
  standalone ? ['--import', 'tsx', 'apps/agent/src/main.ts', ...args] : shortleafArgs(['agent', ...args]);

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningAgent {
  child: ChildProcess;
  stderr(): string;
  /** Every JSON log line so far, oldest first. */
  logs(): AgentLog[];
  /** The log lines of one event, oldest first. */
  events(event: string): AgentLog[];
  /**
   * Resolves with the first log line (at index `from` or later) that `match` accepts. Rejects,
   * with what the agent printed, if it exits first or nothing matches within the timeout.
   */
  waitFor(
    what: string,
    match: (l: AgentLog) => boolean,
    opts?: { from?: number; timeoutMs?: number },
  ): Promise<{ log: AgentLog; index: number }>;
  /** Resolves with the exit status; rejects if it is still running after the timeout. */
  waitForExit(timeoutMs: number): Promise<Exit>;
  exited(): Exit | null;
  /** SIGTERM, then SIGKILL if it has not exited within 10 s. Safe to call twice. */
  stop(): Promise<Exit>;
}

function parseLogs(text: string): AgentLog[] {
  const out: AgentLog[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as AgentLog;
      if (typeof parsed.event === 'string') out.push(parsed);
    } catch {
      /* a partial line: the rest is still coming */
    }
  }
  return out;
}

/** Starts the agent with these arguments and returns at once; the test waits on its log. */
export function startAgent(args: readonly string[], opts: { standalone?: boolean } = {}): RunningAgent {
  const child = track(process.execPath, agentArgs(args, opts.standalone), {});
  child.stdin!.end();
  let stderr = '';
  let logs: AgentLog[] = [];
  let exit: Exit | null = null;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  child.stdout!.resume();
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
    logs = parseLogs(stderr);
    notify();
  });
  const exited = new Promise<Exit>((resolve) => {
    child.once('close', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
      notify();
    });
  });
  const printed = () => `agent stderr:\n${stderr}`;

  const agent: RunningAgent = {
    child,
    stderr: () => stderr,
    logs: () => logs,
    events: (event) => logs.filter((l) => l.event === event),
    waitFor(what, match, o = {}) {
      const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      return new Promise((resolve, reject) => {
        const done = (fn: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          fn();
        };
        const check = () => {
          const index = logs.findIndex((l, i) => i >= (o.from ?? 0) && match(l));
          if (index >= 0) return done(() => resolve({ log: logs[index]!, index }));
          if (exit !== null)
            done(() =>
              reject(new Error(`the agent exited (${exit!.code ?? exit!.signal}) before ${what}\n${printed()}`)),
            );
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${printed()}`))),
          timeoutMs,
        );
        listeners.add(check);
        check();
      });
    },
    async waitForExit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>(
        (_, reject) =>
          (timer = setTimeout(
            () => reject(new Error(`the agent was still running after ${timeoutMs} ms\n${printed()}`)),
            timeoutMs,
          )),
      );
      try {
        return await Promise.race([exited, late]);
      } finally {
        clearTimeout(timer);
      }
    },
    exited: () => exit,
    async stop() {
      if (exit !== null) return exit;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  return agent;
}

/** Runs the agent to completion (`--once`, a usage error); a run past the timeout fails the test. */
export function runAgent(
  args: readonly string[],
  opts: { standalone?: boolean; timeoutMs?: number } = {},
): Promise<RunResult & { logs: AgentLog[] }> {
  return run(process.execPath, agentArgs(args, opts.standalone), { timeoutMs: opts.timeoutMs ?? 60_000 }).then((r) => ({
    ...r,
    logs: parseLogs(r.stderr),
  }));
}

/**
 * A JWK provisioner whose leaves may live one minute (and at most five), for names under .test:
 * the agent then renews within seconds.
 */
export async function addShortLivedProvisioner(data: string, name: string, keyOut: string): Promise<void> {
  await shortleafOk([
    'provisioner',
    'add',
    name,
    '--data',
    data,
    '--key-out',
    keyOut,
    '--default-lifetime',
    '1m',
    '--min-lifetime',
    '1m',
    '--max-lifetime',
    '5m',
    '--allow-dns',
    '*.test',
  ]);
}

/** A one-time token for SUBJECT (and SANs) from `shortleaf token`. */
export async function mintTokenCli(o: {
  caUrl: string;
  provisioner: string;
  key: string;
  subject: string;
  sans?: string[];
}): Promise<string> {
  const r = await shortleafOk([
    'token',
    o.subject,
    '--provisioner',
    o.provisioner,
    '--key',
    o.key,
    '--ca',
    o.caUrl,
    ...(o.sans ?? []).flatMap((s) => ['--san', s]),
  ]);
  return r.stdout.trim();
}

export interface LeafFacts {
  pem: string;
  serial: string;
  /** "DNS:a.test, DNS:b.test", as OpenSSL prints the extension. */
  sans: string;
  notBefore: Date;
  notAfter: Date;
}

/** The leaf (first certificate) of a PEM file. */
export function leafOf(certFile: string): LeafFacts {
  const [pem] = splitCertificates(readFileSync(certFile, 'utf8'));
  if (pem === undefined) throw new Error(`${certFile} holds no certificate`);
  const x = new X509Certificate(pem);
  return {
    pem,
    serial: normalizeSerial(x.serialNumber),
    sans: x.subjectAltName ?? '',
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
  };
}

/** `openssl verify` of the leaf in a PEM file against the roots, with the intermediates as untrusted helpers. */
export async function verifyLeaf(
  certFile: string,
  roots: string,
  intermediates: string,
): Promise<{ ok: boolean; output: string }> {
  const r = await opensslResult(['verify', '-CAfile', roots, '-untrusted', intermediates], leafOf(certFile).pem);
  const output = `${r.stdout}\n${r.stderr}`;
  return { ok: r.code === 0 && /: OK$/m.test(r.stdout), output };
}

/**
 * OpenSSL's view of a certificate file and a key file: both parse (`openssl x509`, `openssl
 * pkey`), and whether the key is the certificate's. Throws (with OpenSSL's message) if either
 * does not parse.
 */
export async function credentialPair(
  certFile: string,
  keyFile: string,
): Promise<{ matches: boolean; certPub: string; keyPub: string }> {
  await openssl(['x509', '-in', certFile, '-noout']);
  await openssl(['pkey', '-in', keyFile, '-noout']);
  const certPub = await publicKeyOfCert(certFile);
  const keyPub = await publicKeyOfKey(keyFile);
  return { matches: certPub === keyPub, certPub, keyPub };
}

/** The bytes of each file (null if missing), to prove later that nothing was touched. */
export function snapshot(files: readonly string[]): Map<string, Buffer | null> {
  return new Map(files.map((f) => [f, existsSync(f) ? readFileSync(f) : null]));
}

/** The files whose bytes differ from the snapshot (an empty list: untouched). */
export function changedSince(before: Map<string, Buffer | null>): string[] {
  return [...before]
    .filter(([f, bytes]) => {
      const now = existsSync(f) ? readFileSync(f) : null;
      return now === null || bytes === null ? now !== bytes : !now.equals(bytes);
    })
    .map(([f]) => f);
}

/** What else sits beside a file: the agent's temporary files (`NAME.tmp-…`) and journal (`NAME.pending`). */
export function leftovers(file: string): string[] {
  const name = basename(file);
  return readdirSync(dirname(file)).filter((n) => n !== name && n.startsWith(`${name}.`));
}

/** The serial of the certificate a TLS server on 127.0.0.1:PORT presents in a new handshake (`openssl s_client`). */
export async function servedSerial(port: number): Promise<string> {
  const { certs } = await handshakeCertificates('127.0.0.1', port);
  return normalizeSerial(new X509Certificate(certs[0]!).serialNumber);
}

/** The shell command that makes the nginx of this prefix folder reload (what `--exec` runs). */
export function nginxReloadCommand(prefix: string): string {
  return `${NGINX} -p ${prefix} -c ${join(prefix, 'nginx.conf')} -e ${join(prefix, 'error.log')} -g 'pid ${join(prefix, 'nginx.pid')};' -s reload`;
}

/** GET /health of the agent's health listener: the HTTP status and the JSON body. */
export async function agentHealth(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await request(`http://127.0.0.1:${port}/health`, { freshConnection: true, timeoutMs: 5_000 });
  return { status: r.status, body: r.json() };
}

export interface StaticServer {
  url: string;
  /** How many requests it answered. */
  hits(): number;
  close(): Promise<void>;
}

/** A plain-HTTP server on loopback that answers every GET with these bytes: a CRL distribution point we control. */
export async function serveBytes(body: () => Buffer, contentType = 'application/pkix-crl'): Promise<StaticServer> {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    req.resume();
    const bytes = body();
    res.writeHead(200, { 'content-type': contentType, 'content-length': bytes.length, 'cache-control': 'no-store' });
    res.end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/crl`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
