/**
 * Shared fixtures for the validator tests (imported only by `*.test.ts`): real servers on free
 * loopback ports, certificates made by OpenSSL, and Pebble's challenge test server as a real DNS
 * server. Nothing here mocks the network.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { promises as dns } from 'node:dns';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AcmeError, type AcmeErrorType } from '../errors.js';
import type { ChallengeToValidate, ValidationConfig } from './types.js';

export const CHALLTESTSRV = '/usr/bin/pebble-challtestsrv';

/** A configuration for tests: loopback ports filled in by each test, a short budget. */
export function testConfig(overrides: Partial<ValidationConfig> = {}): ValidationConfig {
  return { httpPort: 80, tlsPort: 443, dnsResolver: null, hosts: {}, timeoutMs: 3_000, ...overrides };
}

/** A challenge with a fresh token and a key authorization of the real shape. */
export function challengeFor(
  type: ChallengeToValidate['type'],
  value: string,
  identifierType: 'dns' | 'ip' = 'dns',
): ChallengeToValidate {
  const token = randomBytes(16).toString('base64url');
  return {
    type,
    identifier: { type: identifierType, value },
    token,
    keyAuthorization: `${token}.${randomBytes(32).toString('base64url')}`,
  };
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Listens on `host` port 0 and gives the port. Works for node:net, node:http and node:tls servers. */
export async function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

/** Closes a server and every connection it still holds. */
export async function closeServer(server: Server & { closeAllConnections?: () => void }): Promise<void> {
  server.closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A TCP port on 127.0.0.1 with nothing listening (and, as far as we can tell, nothing on UDP). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const server = createServer();
    const port = await listen(server);
    await closeServer(server);
    const udp = createSocket('udp4');
    const free = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (free) return port;
  }
  throw new Error('no free port found on 127.0.0.1');
}

/** Asserts that `work` rejects with an AcmeError of `type` whose message contains every fragment. */
export async function assertAcmeError(
  work: Promise<unknown>,
  type: AcmeErrorType,
  ...fragments: string[]
): Promise<AcmeError> {
  let caught: unknown;
  try {
    await work;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof AcmeError, `expected an AcmeError, got ${String(caught)}`);
  assert.equal(caught.type, type, `type of: ${caught.message}`);
  for (const fragment of fragments)
    assert.ok(caught.message.includes(fragment), `${JSON.stringify(fragment)} not in: ${caught.message}`);
  return caught;
}

/**
 * A self-signed P-256 certificate made by OpenSSL, key generated on the spot. `extensions` are
 * `-addext` values, e.g. `subjectAltName=DNS:svc1.test`.
 */
export function opensslCertificate(commonName: string, extensions: string[]): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-validators-'));
  try {
    const args = [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${commonName}`,
    ];
    for (const ext of extensions) args.push('-addext', ext);
    args.push('-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'));
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `-addext` value for an acmeIdentifier extension holding `hex` (RFC 8737 §3). */
export function acmeIdentifierExtension(hex: string, critical = true): string {
  return `1.3.6.1.5.5.7.1.31=${critical ? 'critical,' : ''}DER:0420${hex}`;
}

/** A running pebble-challtestsrv: a real DNS server whose answers the tests set over HTTP. */
export interface ChallTestSrv {
  /** `127.0.0.1:PORT` of its DNS server, for `dnsResolver`. */
  resolver: string;
  /** POSTs a JSON body to a management endpoint such as `/set-txt`. */
  manage(path: string, body: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts pebble-challtestsrv on free ports with only its DNS server enabled, and waits until both
 * the management API and DNS answer. Fails (never skips) if the binary is missing: CI installs it.
 */
export async function startChallTestSrv(): Promise<ChallTestSrv> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dnsPort = await freePort();
    const managementPort = await freePort();
    const child = spawn(
      CHALLTESTSRV,
      [
        '-dns01',
        `127.0.0.1:${dnsPort}`,
        '-http01',
        '',
        '-https01',
        '',
        '-tlsalpn01',
        '',
        '-management',
        `127.0.0.1:${managementPort}`,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (error) =>
        reject(new Error(`cannot run ${CHALLTESTSRV} (install Debian's pebble package): ${error.message}`)),
      );
      child.once('exit', (code) => reject(new Error(`${CHALLTESTSRV} exited with ${code}: ${output}`)));
    });
    failed.catch(() => {});
    const resolver = `127.0.0.1:${dnsPort}`;
    const manage = async (path: string, body: Record<string, unknown>) => {
      const response = await fetch(`http://127.0.0.1:${managementPort}${path}`, {
        method: 'POST',
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(2_000),
      });
      await response.arrayBuffer();
      assert.equal(response.status, 200, `${path} answered ${response.status}`);
    };
    const server: ChallTestSrv = { resolver, manage, stop: () => stopChild(child) };
    try {
      await Promise.race([failed, waitReady(server)]);
      return server;
    } catch (error) {
      lastError = error;
      await stopChild(child);
      if (error instanceof Error && error.message.startsWith('cannot run')) throw error;
    }
  }
  throw lastError;
}

async function waitReady(server: ChallTestSrv): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      await server.manage('/clear-txt', { host: 'ready.test.' });
      const resolver = new dns.Resolver({ timeout: 500, tries: 1 });
      resolver.setServers([server.resolver]);
      await resolver.resolve4('ready.test');
      return;
    } catch (error) {
      if (Date.now() > until) throw new Error(`pebble-challtestsrv did not become ready: ${String(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}
