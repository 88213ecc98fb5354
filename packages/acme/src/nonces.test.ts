import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { createNoncePool } from './nonces.js';

const random = (n: number) => new Uint8Array(randomBytes(n));

describe('nonce pool (RFC 8555 §6.5)', () => {
  it('accepts each issued nonce exactly once', async () => {
    const pool = createNoncePool({ random, now: () => 0 });
    const a = pool.issue();
    const b = pool.issue();
    assert.notEqual(a, b);
    assert.equal(await pool.consume(b), true);
    assert.equal(await pool.consume(a), true);
    assert.equal(await pool.consume(a), false);
    assert.equal(await pool.consume(b), false);
  });

  // The old pool stored every issued nonce and evicted the oldest at capacity, so unauthenticated
  // HEAD new-nonce requests flushed every honest client's nonce.
  it('keeps honest nonces good through a flood of issued nonces far past its capacity', async () => {
    const capacity = 1000;
    const pool = createNoncePool({ random, now: () => 0, capacity });
    const honest = Array.from({ length: 20 }, () => pool.issue());
    for (let i = 0; i < capacity * 20; i++) pool.issue();
    for (const n of honest) assert.equal(await pool.consume(n), true);
    for (const n of honest) assert.equal(await pool.consume(n), false, 'a nonce is good once');
  });

  it('stays bounded by retiring the oldest outstanding nonces only as used ones overflow its memory', async () => {
    const pool = createNoncePool({ random, now: () => 0, capacity: 3 });
    const old = pool.issue();
    const spent = [pool.issue(), pool.issue(), pool.issue(), pool.issue()];
    const fresh = pool.issue();
    for (const n of spent) assert.equal(await pool.consume(n), true);
    // Four spent with room for three: the smallest spent counter became the low-water mark, so
    // the older unspent nonce is retired, the newer one is not, and replays stay refused.
    assert.equal(await pool.consume(old), false);
    assert.equal(await pool.consume(spent[0]!), false);
    assert.equal(await pool.consume(spent[3]!), false);
    assert.equal(await pool.consume(fresh), true);
  });

  it('refuses forged, altered, foreign and malformed nonces', async () => {
    const pool = createNoncePool({ random, now: () => 0 });
    const other = createNoncePool({ random, now: () => 0 });
    const good = pool.issue();
    const bytes = Buffer.from(good, 'base64url');
    bytes[7]! ^= 1;
    assert.equal(await pool.consume(bytes.toString('base64url')), false, 'one bit changed');
    assert.equal(await pool.consume(other.issue()), false, 'another process key');
    // The last of 22 characters carries 2 bits of the block and 4 spare ones; set a spare one.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const spareBits = good.slice(0, -1) + alphabet[alphabet.indexOf(good.at(-1)!) ^ 1];
    for (const junk of ['', 'AAAA', 'A'.repeat(22), good.slice(1), `${good}A`, '!'.repeat(good.length), spareBits])
      assert.equal(await pool.consume(junk), false, junk);
    assert.equal(await pool.consume(good), true);
  });

  it('refuses a nonce older than its lifetime', async () => {
    let now = 1_000_000;
    const pool = createNoncePool({ random, now: () => now, lifetimeMs: 60_000 });
    const a = pool.issue();
    const b = pool.issue();
    now += 59_999;
    assert.equal(await pool.consume(a), true);
    now += 1;
    assert.equal(await pool.consume(b), false);
  });
});
