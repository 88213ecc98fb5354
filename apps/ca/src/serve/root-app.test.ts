import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Hono } from 'hono';
import { PROBLEM_TYPE_PREFIX } from '@shortleaf/api';
import { createAuthority, loadActiveIssuer, type Logger } from '@shortleaf/authority';
import { initCa } from '../commands/init.js';
import { defaultConfig } from '../config.js';
import { dataSealer, openStore, sqliteAt } from '../data.js';
import { startRevocationServices, type RevocationServices } from '../revocation-services.js';
import { createFrontDoors } from './front-doors.js';
import type { NodeEnv } from './node-env.js';

const ACME_ERROR = 'urn:ietf:params:acme:error:';

// The HTTPS listener's root app as `serve` wires it (a real development CA in a temporary data
// directory), asked through `app.request()`: no socket, no TLS. Each front door answers in its own
// error format, which is what mounting with `app.route()` must keep.
describe('the root app', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-root-app-'));
  const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
  let store: Awaited<ReturnType<typeof openStore>>;
  let revocation: RevocationServices;
  let root: Hono<NodeEnv>;
  let closeDoors: () => Promise<void>;

  before(async () => {
    await initCa({ engine: 'sqlite', dataDir: dir });
    const { sealer } = await dataSealer(sqliteAt(dir));
    store = await openStore(sqliteAt(dir));
    const config = defaultConfig();
    const clock = { now: () => new Date() };
    const random = (n: number) => new Uint8Array(randomBytes(n));
    const statusBase = 'http://status.test';
    const authority = createAuthority({
      store,
      issuer: await loadActiveIssuer(store, sealer),
      clock,
      random,
      urls: () => ({ ocsp: `${statusBase}/ocsp`, caIssuers: `${statusBase}/ca.crt`, crl: `${statusBase}/crl` }),
      logger: quiet,
    });
    revocation = await startRevocationServices({ store, sealer, authority, config, clock, logger: quiet, statusBase });
    const doors = createFrontDoors({
      config,
      store,
      sealer,
      authority,
      revocation,
      names: ['localhost'],
      apiPort: 9443,
      clock,
      random,
      logger: quiet,
      metrics: undefined,
    });
    root = doors.root;
    closeDoors = doors.close;
  });
  after(async () => {
    revocation.stop();
    await closeDoors();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const problem = async (res: Response) => {
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    return (await res.json()) as { type: string; status?: number; detail: string };
  };

  it('answers the REST door: /health, and a REST problem for an unknown path or a bad body', async () => {
    const health = await root.request('/health');
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { issuer: string }).issuer, 'primary');

    const unknown = await root.request('/no/such/endpoint');
    assert.equal(unknown.status, 404);
    assert.equal((await problem(unknown)).type, `${PROBLEM_TYPE_PREFIX}notFound`);

    const bad = await root.request('/api/v1/sign', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{not json',
    });
    assert.equal(bad.status, 400);
    assert.ok((await problem(bad)).type.startsWith(PROBLEM_TYPE_PREFIX));
  });

  it('answers the ACME door under /acme/: its directory, and ACME problems (RFC 8555 §6.7) with a nonce', async () => {
    const directory = await root.request('/acme/acme/directory');
    assert.equal(directory.status, 200);
    assert.match(((await directory.json()) as { newOrder: string }).newOrder, /\/acme\/acme\/new-order$/);

    const wrongType = await root.request('/acme/acme/new-order', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(wrongType.status, 415);
    assert.equal((await problem(wrongType)).type, `${ACME_ERROR}malformed`);
    assert.ok(wrongType.headers.get('replay-nonce'), 'an ACME error carries a fresh nonce');

    // An unknown URL under a provisioner, and under /acme/ itself, is ACME's to refuse, in ACME's words.
    for (const path of ['/acme/acme/no-such-resource', '/acme/']) {
      const res = await root.request(path, { method: 'POST' });
      assert.equal(res.status, 404, path);
      assert.ok((await problem(res)).type.startsWith(ACME_ERROR), path);
    }
    const noProvisioner = await root.request('/acme/nobody/directory');
    assert.equal(noProvisioner.status, 404);
    assert.ok((await problem(noProvisioner)).type.startsWith(ACME_ERROR));
  });

  it('leaves /acme without a slash to the REST door, as the hand-written dispatch did', async () => {
    const res = await root.request('/acme');
    assert.equal(res.status, 404);
    assert.equal((await problem(res)).type, `${PROBLEM_TYPE_PREFIX}notFound`);
  });
});
