import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isHealthy, startHealthServer, type AgentStatus } from './health.js';

const base: AgentStatus = {
  subject: 'svc1.test',
  serial: 'ab',
  notBefore: new Date('2026-01-01T00:00:00Z'),
  notAfter: new Date('2026-01-01T10:00:00Z'),
  nextRenewal: null,
  lastRenewal: null,
  lastError: null,
  failures: 0,
};
const at = (iso: string) => new Date(iso);

describe('agent health', () => {
  it('is healthy while valid, even in the last tenth when renewals are not failing', () => {
    assert.equal(isHealthy(base, at('2026-01-01T05:00:00Z')), true);
    assert.equal(isHealthy(base, at('2026-01-01T09:30:00Z')), true);
  });
  it('is unhealthy in the last tenth of the life with renewals failing, and once expired', () => {
    assert.equal(isHealthy({ ...base, failures: 2 }, at('2026-01-01T08:00:00Z')), true);
    assert.equal(isHealthy({ ...base, failures: 2 }, at('2026-01-01T09:30:00Z')), false);
    assert.equal(isHealthy(base, at('2026-01-01T10:00:00Z')), false);
    assert.equal(isHealthy({ ...base, notBefore: null, notAfter: null }, at('2026-01-01T05:00:00Z')), false);
  });
  it('serves the status as JSON, 200 or 503', async () => {
    let now = at('2026-01-01T05:00:00Z');
    const status = { ...base, lastError: 'connect ECONNREFUSED', failures: 1 };
    const h = await startHealthServer(
      { host: '127.0.0.1', port: 0 },
      () => status,
      () => now,
    );
    try {
      const ok = await fetch(`http://127.0.0.1:${h.port}/health`);
      assert.equal(ok.status, 200);
      const body = (await ok.json()) as Record<string, unknown>;
      assert.equal(body.serial, 'ab');
      assert.equal(body.notAfter, '2026-01-01T10:00:00.000Z');
      assert.equal(body.lastError, 'connect ECONNREFUSED');
      now = at('2026-01-01T09:45:00Z');
      const bad = await fetch(`http://127.0.0.1:${h.port}/health`);
      assert.equal(bad.status, 503);
      assert.equal(((await bad.json()) as Record<string, unknown>).status, 'unhealthy');
      assert.equal((await fetch(`http://127.0.0.1:${h.port}/other`)).status, 404);
    } finally {
      await h.close();
    }
  });
});
