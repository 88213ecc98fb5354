#!/usr/bin/env node
// Runs every test with Node's own runner (TypeScript through tsx): unit tests beside the code in
// packages/ and apps/, end-to-end tests in test/. Node 20's --test takes no globs, so we list files.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tsImport } from 'tsx/esm/api';

function find(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) find(path, out);
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const filter = process.argv.slice(2);
const files = ['packages', 'apps', 'test']
  .flatMap((d) => find(d))
  .filter((f) => filter.length === 0 || filter.some((p) => f.includes(p)))
  .sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// The end-to-end helpers copy every line our processes log, and every secret the tests create,
// into this folder (test/helpers/secret-log.ts); it is scanned once all tests have run.
const logDir = mkdtempSync(join(tmpdir(), 'shortleaf-test-logs-'));
// One PostgreSQL server for the whole run (the TypeScript harness, loaded through tsx): each test
// gets its own database on it (testDatabaseUrl). Destroying it copies its log, every statement the
// tests sent, into logDir, so the secret scan reads it too.
process.env.SHORTLEAF_TEST_LOG_DIR = logDir;
const postgres = await startSharedPostgres();
// Each file runs as one test under --test-timeout. test/agent.test.ts runs six real agents for
// about 280 s beside another file on this 2-core machine (its SIGKILL tests alone take 140 s), so
// 300 s cut it off with every subtest passed; 600 s still ends a hung file.
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=600000', ...files],
  {
    stdio: 'inherit',
    env: { ...process.env, ...(postgres ? { SHORTLEAF_TEST_PG_URL: postgres.url() } : {}) },
  },
);
let leaked = false;
try {
  await postgres?.destroy();
  leaked = scanLogs(logDir);
} finally {
  rmSync(logDir, { recursive: true, force: true });
}
process.exit(result.status !== 0 ? (result.status ?? 1) : leaked ? 1 : 0);

/**
 * Starts the run's PostgreSQL server, or returns undefined when the caller named one already or
 * it cannot start (not installed): the tests then run anyway, and those that need PostgreSQL fail
 * saying how to install it.
 */
async function startSharedPostgres() {
  if (process.env.SHORTLEAF_TEST_PG_URL) return undefined; // a server of the caller's choosing
  const { startPostgres } = await tsImport('../packages/store/src/postgres/test-server.ts', import.meta.url);
  try {
    return await startPostgres();
  } catch (err) {
    console.error(`no shared PostgreSQL server for this run: ${err.message}`);
    return undefined;
  }
}

/**
 * "No key, token or passphrase is ever logged": looks through every captured log for PEM private
 * keys, JWT-shaped strings (compact JWS with a JSON header) and each secret the tests recorded.
 * Printed after the runner's own summary, which CI reads, and never starting with `# `.
 */
function scanLogs(dir) {
  const names = readdirSync(dir);
  const secrets = new Set();
  for (const name of names.filter((n) => n.startsWith('secrets-'))) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n'))
      if (line !== '') secrets.add(JSON.parse(line));
  }
  const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const patterns = [
    ['PEM private key', /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/],
    ['JWT-shaped string', /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/],
    ...(secrets.size === 0
      ? []
      : [
          [
            'recorded secret',
            new RegExp(
              [...secrets]
                .sort((a, b) => b.length - a.length)
                .map(escape)
                .join('|'),
            ),
          ],
        ]),
  ];
  const logs = names.filter((n) => n.endsWith('.log'));
  const hits = [];
  let lines = 0;
  for (const name of logs) {
    const text = readFileSync(join(dir, name), 'utf8');
    text.split('\n').forEach((line, i) => {
      lines++;
      for (const [kind, pattern] of patterns) {
        const m = pattern.exec(line);
        if (m) hits.push(`${name}:${i + 1}: ${kind} (${m[0].slice(0, 12)}…)`);
      }
    });
  }
  if (hits.length === 0) {
    console.log(
      `secret scan: ${lines} log lines of ${logs.length} process streams, ${secrets.size} recorded secrets: no private key, token or passphrase found`,
    );
    return false;
  }
  console.log(`secret scan FAILED: ${hits.length} log lines hold secrets:`);
  for (const hit of hits.slice(0, 30)) console.log(`  ${hit}`);
  return true;
}
