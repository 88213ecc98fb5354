import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAIN = new URL('../apps/ca/src/main.ts', import.meta.url).pathname;

export interface BenchServer {
  dataDir: string;
  publicUrl: string;
  statusUrl: string;
  /** The address it bound (https://127.0.0.1:PORT): differs from `publicUrl` when a config names a load balancer's. */
  api: string;
  pid: number;
  stop(): Promise<void>;
}

export interface StartServerOptions {
  /** Extra flags for the server's node, before the script: `['--cpu-prof', '--cpu-prof-dir', dir]`. */
  nodeArgs?: string[];
  /** Extra flags for `shortleaf serve`: `['--config', file]`. */
  serveArgs?: string[];
  /** A PostgreSQL URL: the CA lives there instead of in the data folder's SQLite file. */
  database?: string;
  /**
   * Another instance's data folder, to start a second instance on the same CA (with `database`):
   * nothing is initialised, and stopping this instance leaves the folder to its owner.
   */
  sharedDataDir?: string;
}

/** Initialises a development CA in a temp folder and starts `shortleaf serve` on free ports. */
/** Runs one `shortleaf` verb to completion; its output, or an error with it. */
export function shortleafCli(args: readonly string[]): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0)
    throw new Error(`shortleaf ${args.join(' ')} failed (${r.status ?? r.error?.message}): ${r.stdout}${r.stderr}`);
  return r.stdout;
}

export async function startServer(options: StartServerOptions = {}): Promise<BenchServer> {
  const database = options.database === undefined ? [] : ['--database', options.database];
  const dataDir = options.sharedDataDir ?? mkdtempSync(join(tmpdir(), 'shortleaf-bench-'));
  const ownsDataDir = options.sharedDataDir === undefined;
  if (ownsDataDir) shortleafCli(['init', '--data', dataDir, ...database]);
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      '--import',
      'tsx',
      MAIN,
      'serve',
      '--data',
      dataDir,
      ...database,
      '--listen',
      '127.0.0.1:0',
      '--status-listen',
      '127.0.0.1:0',
      ...(options.serveArgs ?? []),
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env },
    },
  );
  const listening = await new Promise<{ publicUrl: string; statusUrl: string; api: string }>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s: ${buf}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        if (!line.includes('"event":"listening"')) continue;
        clearTimeout(timer);
        resolve(JSON.parse(line) as { publicUrl: string; statusUrl: string; api: string });
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${buf}`)));
  }).catch((err: unknown) => {
    // Not started (an exit, a config error, the timeout): leave no process and no folder behind.
    child.kill('SIGKILL');
    if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  });
  return {
    dataDir,
    ...listening,
    pid: child.pid!,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** CPU time (user + system, ms) a process has used so far, from /proc. */
export function cpuMs(pid: number): number {
  const { user, system } = cpuTimes(pid);
  return user + system;
}

/** User and system (kernel) CPU time, ms, a process has used so far, from /proc/PID/stat. */
export function cpuTimes(pid: number): { user: number; system: number } {
  const stat = spawnSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' }).stdout;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(fields[11]) * 1000) / 100, system: (Number(fields[12]) * 1000) / 100 };
}

/** A free TCP port on 127.0.0.1, for servers that cannot be told to pick one themselves. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export interface WrkResult {
  requests: number;
  seconds: number;
  /** 2xx responses per second. */
  rate: number;
  /** The 99th percentile latency in milliseconds (wrk --latency). */
  p99Ms: number;
  non2xx: number;
  /** connect + read + write + timeout errors. */
  socketErrors: number;
  output: string;
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Runs Debian's wrk, one thread, for a bounded time and reads its summary. `prefix` runs it
 * through another command (`nsenter -t PID -n` to reach a server in its own network namespace).
 */
export function runWrk(opts: {
  url: string;
  connections: number;
  seconds: number;
  script?: string;
  scriptArgs?: string[];
  prefix?: string[];
}): WrkResult {
  const args = [
    '-t1',
    `-c${opts.connections}`,
    `-d${opts.seconds}s`,
    '--latency',
    ...(opts.script === undefined ? [] : ['-s', opts.script]),
    opts.url,
  ];
  if (opts.scriptArgs !== undefined) args.push('--', ...opts.scriptArgs);
  const [command, ...prefixArgs] = [...(opts.prefix ?? []), 'wrk'];
  const run = spawnSync(command!, [...prefixArgs, ...args], {
    encoding: 'utf8',
    timeout: (opts.seconds + 20) * 1000,
    killSignal: 'SIGKILL',
  });
  const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
  const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? NaN);
  const duration = /requests in ([\d.]+)(us|ms|s|m)/.exec(output);
  const p99 = /^\s*99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$/m.exec(output);
  if (run.error !== undefined || Number.isNaN(requests) || duration === null)
    throw new Error(`wrk failed: ${run.error?.message ?? ''} ${output}`);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = sock === null ? 0 : sock.slice(1).reduce((sum, n) => sum + Number(n), 0);
  const seconds = (Number(duration[1]) * TIME_UNITS[duration[2]!]!) / 1000;
  return {
    requests,
    seconds,
    rate: (requests - non2xx) / seconds,
    p99Ms: p99 === null ? NaN : Number(p99[1]) * TIME_UNITS[p99[2]!]!,
    non2xx,
    socketErrors,
    output,
  };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/** Where a profile frame's code lives: a node: module, an npm package, or one of our files. */
function codeArea(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return url;
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg !== null) return `npm:${pkg[1]}`;
  const ours = /\/((?:packages|apps|bench)\/.+)$/.exec(url);
  return ours?.[1] ?? url;
}

/**
 * Reads a `node --cpu-prof` profile and summarises the samples taken between two
 * CLOCK_MONOTONIC instants (µs, as `process.hrtime.bigint() / 1000n`; V8 stamps its samples on the
 * same clock): self time by function and by code area, and time spent under each of our files.
 * Shares are of the busy samples; idle time is left out.
 */
export function summarizeCpuProfile(file: string, fromUs: bigint, toUs: bigint, top = 15): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: ProfileNode[];
    startTime: number;
    samples: number[];
    timeDeltas: number[];
  };
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfByFunction = new Map<string, number>();
  const selfByArea = new Map<string, number>();
  const underOurFile = new Map<string, number>();
  const underFunction = new Map<string, number>();
  const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  let t = profile.startTime;
  let busy = 0;
  let inWindow = 0;
  for (const [i, id] of profile.samples.entries()) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < Number(fromUs) || t > Number(toUs)) continue;
    inWindow++;
    const node = nodes.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    busy++;
    const area = codeArea(url, functionName);
    // tsx compiles our TypeScript without line information for the profiler: no line for those.
    add(
      selfByFunction,
      `${functionName || '(anonymous)'}  ${area}${url === '' || lineNumber <= 0 ? '' : `:${lineNumber + 1}`}`,
    );
    add(selfByArea, area);
    const seen = new Set<string>();
    const seenFunctions = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = nodes.get(at)!.callFrame;
      const a = codeArea(frame.url, frame.functionName);
      if (/^(packages|apps)\//.test(a)) {
        seen.add(a);
        if (frame.functionName !== '') seenFunctions.add(`${frame.functionName}  ${a}`);
      }
    }
    for (const a of seen) add(underOurFile, a);
    for (const f of seenFunctions) add(underFunction, f);
  }
  if (busy === 0) return `  no busy samples in the window (${inWindow} samples in it; is the clock the same?)`;
  const table = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  return [
    `${busy} busy samples of ${inWindow} in the window`,
    `self time by function:\n${table(selfByFunction, top)}`,
    `self time by code area:\n${table(selfByArea, top)}`,
    `time under each of our files (inclusive):\n${table(underOurFile, top)}`,
    `time under each of our named functions (inclusive):\n${table(underFunction, top)}`,
  ].join('\n\n');
}

export interface Spawned {
  child: ChildProcess;
  /** Everything it wrote so far, stdout and stderr. */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts a process in its own process group, so stopping it also stops the workers it forks.
 * `ownGroup` is for programs that make their group themselves (OpenSSL's -multi calls
 * setpgid(0, 0), which fails in a session leader), so they are not started detached.
 */
export function spawnGroup(
  command: string,
  args: string[],
  cwd: string,
  stopSignal: NodeJS.Signals = 'SIGTERM',
  ownGroup = false,
): Spawned {
  const child = spawn(command, args, { cwd, detached: !ownGroup, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (d: Buffer) => (output = `${output}${d.toString()}`.slice(-10_000));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      try {
        child.kill(signal); // the group is not made yet, or is gone
      } catch {
        // already gone
      }
    }
  };
  return {
    child,
    output: () => output,
    stop: async () => {
      signalGroup(stopSignal);
      const timer = setTimeout(() => signalGroup('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      signalGroup('SIGKILL'); // forked workers whose parent exited first
    },
  };
}

/** Resolves with the first match of `pattern` in what the process wrote; rejects if it exits first. */
export function waitForOutput(s: Spawned, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 10 s: ${s.output()}`)), 10_000);
    const onData = () => {
      const m = pattern.exec(s.output());
      if (m !== null) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    s.child.stdout!.on('data', onData);
    s.child.stderr!.on('data', onData);
    s.child.once('exit', (code) => reject(new Error(`${what} exited with ${code}: ${s.output()}`)));
  });
}

/** nginx serving one pre-signed response as a static file for any /ocsp/... GET. */
export async function startNginx(
  dir: string,
  workers: string,
  response: Uint8Array,
): Promise<{ port: number; stop(): Promise<void> }> {
  const prefix = join(dir, `nginx-${workers}`);
  mkdirSync(join(prefix, 'www'), { recursive: true });
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  writeFileSync(join(prefix, 'www', 'response.der'), response);
  const port = await freePort();
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `  ${t}_temp_path ${prefix}/tmp/${t};`)
    .join('\n');
  writeFileSync(
    join(prefix, 'nginx.conf'),
    `user root;
worker_processes ${workers};
error_log ${prefix}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
${temp}
  server {
    listen 127.0.0.1:${port};
    root ${prefix}/www;
    location /ocsp/ {
      default_type application/ocsp-response;
      try_files /response.der =404;
    }
  }
}
`,
  );
  const s = spawnGroup(
    'nginx',
    [
      '-p',
      prefix,
      '-e',
      `${prefix}/error.log`,
      '-c',
      `${prefix}/nginx.conf`,
      '-g',
      `daemon off; pid ${prefix}/nginx.pid;`,
    ],
    prefix,
    'SIGQUIT',
  );
  try {
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/ocsp/x`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 50 || s.child.exitCode !== null)
        throw new Error(
          `nginx did not start: ${s.output()}${readFileSync(join(prefix, 'error.log'), { encoding: 'utf8', flag: 'a+' })}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
    return { port, stop: s.stop };
  } catch (err) {
    await s.stop();
    throw err;
  }
}

/**
 * A bare node:http server that answers every request with the same precomputed bytes: no
 * framework, no lookup. What any Node responder could reach at best on this machine.
 */
export async function startNodeStatic(
  dir: string,
  response: Uint8Array,
): Promise<{ port: number; stop(): Promise<void> }> {
  const file = join(dir, 'node-static.der');
  writeFileSync(file, response);
  const code = `
    const body = require('node:fs').readFileSync(${JSON.stringify(file)});
    const headers = { 'content-type': 'application/ocsp-response', 'content-length': body.length };
    const server = require('node:http').createServer((req, res) => {
      req.resume();
      req.on('end', () => { res.writeHead(200, headers); res.end(body); });
    });
    server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
    process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); });`;
  const s = spawnGroup(process.execPath, ['-e', code], dir);
  try {
    const m = await waitForOutput(s, /port (\d+)/, 'the node:http server');
    return { port: Number(m[1]), stop: s.stop };
  } catch (err) {
    await s.stop();
    throw err;
  }
}
