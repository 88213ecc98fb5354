import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay, checkFraction, renewalTime, timeInWindow } from './schedule.js';

const cert = { notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2026-01-02T00:00:00Z') };
const HOUR = 3_600_000;

describe('renewal schedule', () => {
  it('renews at two-thirds of the lifetime without jitter', () => {
    assert.equal(
      renewalTime(cert, { renewAt: 2 / 3, jitter: 0, random: () => 0.9 }).getTime(),
      cert.notBefore.getTime() + 16 * HOUR,
    );
  });

  it('spreads a fleet over ± jitter of the lifetime', () => {
    const at = (r: number) =>
      renewalTime(cert, { renewAt: 0.5, jitter: 0.1, random: () => r }).getTime() - cert.notBefore.getTime();
    assert.equal(at(0), Math.round(0.4 * 24 * HOUR));
    assert.equal(at(1), Math.round(0.6 * 24 * HOUR));
    assert.equal(at(0.5), 12 * HOUR);
  });

  it('never schedules into the last tenth of the life, nor right at the start', () => {
    assert.equal(
      renewalTime(cert, { renewAt: 0.95, jitter: 0.05, random: () => 1 }).getTime(),
      cert.notBefore.getTime() + 0.9 * 24 * HOUR,
    );
    assert.equal(
      renewalTime(cert, { renewAt: 0.01, jitter: 0, random: () => 0 }).getTime(),
      cert.notBefore.getTime() + 0.05 * 24 * HOUR,
    );
  });

  it('refuses a fraction outside (0, 1)', () => {
    for (const bad of [0, 1, 1.5, -0.2, Number.NaN])
      assert.throws(() => checkFraction(bad, '--renew-at'), /--renew-at must be a fraction/);
    assert.equal(checkFraction(0.66, '--renew-at'), 0.66);
  });
});

describe('ARI window (RFC 9773 §4.2)', () => {
  const window = { start: new Date('2026-01-01T16:00:00Z'), end: new Date('2026-01-01T18:00:00Z') };
  it('picks a uniformly random moment inside the window', () => {
    const now = new Date('2026-01-01T10:00:00Z');
    assert.equal(timeInWindow(window, now, () => 0).getTime(), window.start.getTime());
    assert.equal(timeInWindow(window, now, () => 0.5).getTime(), window.start.getTime() + HOUR);
  });
  it('renews now when the window is over (a revoked certificate)', () => {
    const now = new Date('2026-01-01T19:00:00Z');
    assert.equal(timeInWindow(window, now, () => 0.7).getTime(), now.getTime());
  });
  it('stays within what is left of a window that has begun', () => {
    const now = new Date('2026-01-01T17:00:00Z');
    const at = timeInWindow(window, now, () => 0.999).getTime();
    assert.ok(at >= now.getTime() && at < window.end.getTime());
  });
});

describe('backoff', () => {
  const opts = (r: number) => ({ minMs: 1_000, maxMs: 60_000, random: () => r });
  it('doubles per attempt up to the cap, with at least half of each step', () => {
    assert.deepEqual(
      [1, 2, 3, 4].map((a) => backoffDelay(a, opts(1))),
      [1_000, 2_000, 4_000, 8_000],
    );
    assert.deepEqual(
      [1, 2, 3, 4].map((a) => backoffDelay(a, opts(0))),
      [500, 1_000, 2_000, 4_000],
    );
    assert.equal(backoffDelay(30, opts(1)), 60_000);
    assert.equal(backoffDelay(30, opts(0)), 30_000);
  });
});
