// The PostgreSQL every test runs against: a real server of Debian's `postgresql` package, started
// from its binaries in a temporary folder on a free loopback port, never the package's own cluster
// on 5432. Tests get a fresh database each (`testDatabaseUrl`) on one server per run; tests that
// stop, restart or kill the server start their own (`startPostgres`).
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chownSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const READY_TIMEOUT_MS = 30_000;
const PG_ROOT = '/usr/lib/postgresql';

/** A PostgreSQL server of our own, in its own temporary folder. */
export interface PostgresServer {
  readonly port: number;
  /** The server's log (every statement when `logStatements`). */
  readonly logFile: string;
  /** postgres://postgres@127.0.0.1:PORT/DATABASE (default database `postgres`). */
  url(database?: string): string;
  /** Creates a fresh, empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** `pg_ctl stop -m fast`: clients get errors, then the server is down. */
  stop(): Promise<void>;
  /** Starts again on the same port and data; resolves once it accepts connections. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Stops it at once (`-m immediate`) and removes its folder; idempotent. */
  destroy(): Promise<void>;
}

/** Servers not yet destroyed, stopped and removed when the process ends whatever the tests did. */
const live = new Map<string, { dataDir: string; logFile: string; pgCtl: string }>();

/**
 * Starts a new server: initdb into a temporary folder (owned by `postgres` when we are root,
 * since PostgreSQL refuses to run as root), then pg_ctl on a free port. fsync stays on: tests
 * check that what a commit acknowledged survives a crash.
 */
export async function startPostgres(opts: { logStatements?: boolean } = {}): Promise<PostgresServer> {
  const bin = binDir();
  const pgCtl = join(bin, 'pg_ctl');
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-pg-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  if (isRoot()) chownSync(dir, idOf('-u'), idOf('-g'));
  live.set(dir, { dataDir, logFile, pgCtl });
  try {
    await asPostgres(join(bin, 'initdb'), [
      ...['-D', dataDir, '--auth=trust', '-U', 'postgres', '--encoding=UTF8', '--locale=C'],
      '--no-sync', // only initdb's own files: the server itself fsyncs every commit
    ]);
    // Ports are found by binding port 0; another process may take one before PostgreSQL binds
    // it, so a failed start tries a new port a few times.
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      configure(dataDir, dir, port, opts.logStatements ?? true);
      try {
        await pgStart(pgCtl, dataDir, logFile, port);
        break;
      } catch (err) {
        if (attempt >= 3 || !/could not bind|already in use/i.test(logTail(logFile))) throw err;
      }
    }
    return serverHandle(dir, dataDir, logFile, pgCtl, port);
  } catch (err) {
    destroySync(dir);
    throw err;
  }
}

function serverHandle(dir: string, dataDir: string, logFile: string, pgCtl: string, port: number): PostgresServer {
  let destroyed: Promise<void> | undefined;
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  const stop = async () => {
    await asPostgres(pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', String(READY_TIMEOUT_MS / 1000)]);
  };
  const start = () => pgStart(pgCtl, dataDir, logFile, port);
  return {
    port,
    logFile,
    url,
    async createDatabase() {
      const name = databaseName();
      await adminQuery(url(), `CREATE DATABASE ${name}`);
      return url(name);
    },
    stop,
    start,
    async restart() {
      await stop();
      await start();
    },
    destroy() {
      destroyed ??= Promise.resolve().then(() => destroySync(dir));
      return destroyed;
    },
  };
}

/**
 * A fresh database for this test on the run's shared server: the one scripts/run-tests.mjs
 * started (SHORTLEAF_TEST_PG_URL, its admin URL), else one this process starts on first use and
 * destroys when it exits. The database is dropped after the test, once its connections are closed
 * (or after a few seconds, WITH (FORCE)), so it does not matter in which order the test's own
 * `t.after` hooks close its pools.
 */
export async function testDatabaseUrl(t: TestContext): Promise<string> {
  const admin = await sharedAdminUrl();
  const name = databaseName();
  await adminQuery(admin, `CREATE DATABASE ${name}`);
  t.after(() => {
    void dropWhenIdle(admin, name);
  });
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

let shared: Promise<string> | undefined;

function sharedAdminUrl(): Promise<string> {
  const fromEnv = process.env.SHORTLEAF_TEST_PG_URL;
  if (fromEnv !== undefined && fromEnv !== '') return Promise.resolve(fromEnv);
  shared ??= startPostgres().then((s) => s.url());
  return shared;
}

/** Waits (bounded) for the test's connections to the database to close, then drops it. */
async function dropWhenIdle(admin: string, name: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  try {
    while (Date.now() < deadline) {
      const { rows } = await adminQuery(admin, 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [
        name,
      ]);
      if ((rows[0] as { n: number }).n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await adminQuery(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } catch {
    /* the server is gone (a test stopped it, or the run is ending): nothing left to drop */
  }
}

async function adminQuery(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {}); // a server going away mid-query rejects the query; no stray event
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}

/** `t_` + random hex: safe unquoted as an identifier, and never the same twice in a run. */
const databaseName = () => `t_${randomBytes(8).toString('hex')}`;

/** The newest installed major version's binaries, e.g. /usr/lib/postgresql/15/bin. */
function binDir(): string {
  const versions = existsSync(PG_ROOT)
    ? readdirSync(PG_ROOT)
        .filter((v) => existsSync(join(PG_ROOT, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0] === undefined)
    throw new Error(
      `PostgreSQL is not installed (no ${PG_ROOT}/*/bin/pg_ctl): install Debian's postgresql (apt-get install postgresql)`,
    );
  return join(PG_ROOT, versions[0], 'bin');
}

/** Settings appended to postgresql.conf, where pg_ctl's later starts find them again. */
function configure(dataDir: string, socketDir: string, port: number, logStatements: boolean): void {
  const conf = join(dataDir, 'postgresql.conf');
  const base = readFileSync(conf, 'utf8').split('\n# shortleaf test server\n')[0];
  const settings = {
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${socketDir}'`,
    max_connections: '200', // several CA instances, each with its pools, in one test run
    shared_buffers: "'32MB'",
    logging_collector: 'off',
    log_destination: "'stderr'",
    log_line_prefix: "'%m [%p] %q%u@%d '",
    log_statement: logStatements ? "'all'" : "'none'",
  };
  const lines = Object.entries(settings).map(([k, v]) => `${k} = ${v}`);
  // Rewriting the existing file keeps its owner (postgres) even when we are root.
  writeFileSync(conf, `${base}\n# shortleaf test server\n${lines.join('\n')}\n`);
}

async function pgStart(pgCtl: string, dataDir: string, logFile: string, port: number): Promise<void> {
  try {
    await asPostgres(pgCtl, ['start', '-D', dataDir, '-l', logFile, '-w', '-t', String(READY_TIMEOUT_MS / 1000)]);
  } catch (err) {
    throw new Error(`PostgreSQL did not start on port ${port}: ${(err as Error).message}\nlog:\n${logTail(logFile)}`);
  }
  await waitForConnection(`postgres://postgres@127.0.0.1:${port}/postgres`);
}

/** pg_ctl -w waits for the postmaster to say it is ready; this proves a client gets in over TCP. */
async function waitForConnection(url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      await adminQuery(url, 'SELECT 1');
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`PostgreSQL at ${url} accepts no connection: ${(err as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const isRoot = () => process.getuid?.() === 0;

function idOf(flag: '-u' | '-g'): number {
  return Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
}

/** PostgreSQL refuses to run as root: when we are root, its programs run as `postgres`. */
function commandAsPostgres(cmd: string, args: string[]): [string, string[]] {
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

async function asPostgres(cmd: string, args: string[]): Promise<void> {
  const [file, argv] = commandAsPostgres(cmd, args);
  try {
    await run(file, argv, { cwd: tmpdir() });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args[0] ?? ''} failed: ${(e.stderr || e.stdout || e.message).trim()}`);
  }
}

function logTail(logFile: string): string {
  try {
    return readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Stops a server at once and removes its folder; synchronous so it also runs from 'exit'. When
 * scripts/run-tests.mjs collects logs (SHORTLEAF_TEST_LOG_DIR), the server's log goes there first
 * so the run's secret scan reads every statement the tests sent.
 */
function destroySync(dir: string): void {
  const server = live.get(dir);
  if (server === undefined) return;
  live.delete(dir);
  const [file, argv] = commandAsPostgres(server.pgCtl, ['stop', '-D', server.dataDir, '-m', 'immediate', '-w']);
  if (existsSync(join(server.dataDir, 'postmaster.pid'))) spawnSync(file, argv, { cwd: tmpdir(), stdio: 'ignore' });
  const logDir = process.env.SHORTLEAF_TEST_LOG_DIR;
  if (logDir !== undefined && logDir !== '' && existsSync(server.logFile)) {
    try {
      copyFileSync(server.logFile, join(logDir, `postgres-${process.pid}-${randomBytes(4).toString('hex')}.log`));
    } catch {
      /* the run's log folder is gone: nothing will be scanned anyway */
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

function destroyAll(): void {
  for (const dir of [...live.keys()]) destroySync(dir);
}

process.on('exit', destroyAll);
// Ctrl-C or the runner's SIGTERM skip 'exit' handlers: clean up, then let the signal do what it
// would have done (end the process, unless someone else handles it).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    destroyAll();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}
