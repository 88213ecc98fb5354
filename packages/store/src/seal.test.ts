import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError } from './errors.js';
import { SEAL_SALT_SETTING, openSealer, scryptKdf, sealSecret, unsealSecret, type Kdf } from './seal.js';
import { openStore } from './test-fixtures.js';

const passphrase = 'correct horse battery staple';
const context = 'issuer:01HZX';
const secret = new TextEncoder().encode('pretend these are the PKCS#8 bytes of a private key');
const headerLength = 4 + 3 + 16 + 12 + 16;

async function assertUnsealFails(blob: Uint8Array, pass = passphrase, ctx = context): Promise<void> {
  await assert.rejects(unsealSecret(blob, pass, ctx), (err: unknown) => {
    assert.ok(err instanceof StoreError);
    assert.equal(err.code, 'unsealFailed');
    assert.equal(err.message, 'cannot unseal: wrong passphrase or corrupted key');
    assert.ok(!err.message.includes(pass));
    return true;
  });
}

describe('sealSecret / unsealSecret', () => {
  it('round-trips and writes the self-describing header', async () => {
    const blob = await sealSecret(secret, passphrase, context);
    assert.equal(Buffer.from(blob.subarray(0, 4)).toString('ascii'), 'SLS2');
    assert.deepEqual([...blob.subarray(4, 7)], [15, 8, 1]);
    assert.equal(blob.length, headerLength + secret.length);
    assert.ok(!Buffer.from(blob).includes(Buffer.from(secret)), 'plaintext must not appear in the blob');
    assert.deepEqual(await unsealSecret(blob, passphrase, context), secret);
  });

  it('uses a fresh salt and IV for every seal', async () => {
    const a = await sealSecret(secret, passphrase, context);
    const b = await sealSecret(secret, passphrase, context);
    assert.notDeepEqual(a.subarray(7, 7 + 16), b.subarray(7, 7 + 16));
    assert.notDeepEqual(a.subarray(23, 23 + 12), b.subarray(23, 23 + 12));
  });

  it('round-trips an empty secret', async () => {
    const blob = await sealSecret(new Uint8Array(0), passphrase, context);
    assert.deepEqual(await unsealSecret(blob, passphrase, context), new Uint8Array(0));
  });

  it('refuses the wrong passphrase', async () => {
    const blob = await sealSecret(secret, passphrase, context);
    await assertUnsealFails(blob, 'correct horse battery stapler');
  });

  it('refuses the wrong context, so a blob cannot move to another row', async () => {
    const blob = await sealSecret(secret, passphrase, context);
    await assertUnsealFails(blob, passphrase, 'issuer:someone-else');
  });

  for (const [part, offset] of [
    ['KDF parameter', 5],
    ['salt', 7],
    ['iv', 23],
    ['tag', 35],
    ['ciphertext', headerLength],
    ['last byte', -1],
  ] as const) {
    it(`refuses a blob with one flipped bit in the ${part}`, async () => {
      const blob = await sealSecret(secret, passphrase, context);
      const at = offset < 0 ? blob.length + offset : offset;
      blob[at] = (blob[at] ?? 0) ^ 0x01;
      await assertUnsealFails(blob);
    });
  }

  it('refuses a truncated blob', async () => {
    const blob = await sealSecret(secret, passphrase, context);
    await assertUnsealFails(blob.subarray(0, blob.length - 1));
    await assertUnsealFails(blob.subarray(0, headerLength - 1));
    await assertUnsealFails(new Uint8Array(0));
  });

  it('refuses unknown magic', async () => {
    const blob = await sealSecret(secret, passphrase, context);
    blob.set(Buffer.from('SLS3', 'ascii'), 0);
    await assertUnsealFails(blob);
  });

  it('refuses KDF parameters outside the allowed bounds without running them', async () => {
    const blob = await sealSecret(secret, passphrase, context);
    blob[4] = 40; // N = 2^40 would need terabytes
    await assertUnsealFails(blob);
  });

  it('treats passphrases that differ only in Unicode normalisation as the same', async () => {
    const blob = await sealSecret(secret, 'caf\u00e9', context);
    assert.deepEqual(await unsealSecret(blob, 'cafe\u0301', context), secret);
  });

  it('refuses to seal under an empty passphrase', async () => {
    await assert.rejects(sealSecret(secret, '', context), TypeError);
  });
});

/** Sealed by `sealSecret` as it was before SLS2 (commit 5e936d7): what every existing database holds. */
const GOLDEN_V1 = {
  blob: 'U0xTMQ8IAZr6dhdac1fhIbhmvFlnd5q+3T/2ay3m5jwivPgQYndRXS/hj3B8k65LNSLt2koGaut7QWGQzm2RWBOS9H6ixwhm3PlpKYdyB0JodTrdJzhlxZ/bfBhqp+Po',
  passphrase: 'correct horse battery staple',
  context: 'acme-eab:acme:kid-golden',
  plaintext: 'an EAB HMAC key sealed by Shortleaf before v2',
};

/** The real scrypt, counted: how often a sealer derives a key. */
function countingKdf(): { kdf: Kdf; calls: () => number } {
  let calls = 0;
  return { kdf: (p, s, params) => ((calls += 1), scryptKdf(p, s, params)), calls: () => calls };
}

describe('openSealer (one key derivation per process)', () => {
  it('opens an SLS1 blob from an existing database, one-shot and through a sealer', async (t) => {
    const blob = new Uint8Array(Buffer.from(GOLDEN_V1.blob, 'base64'));
    assert.equal(Buffer.from(blob.subarray(0, 4)).toString('ascii'), 'SLS1');
    const expected = new TextEncoder().encode(GOLDEN_V1.plaintext);
    assert.deepEqual(await unsealSecret(blob, GOLDEN_V1.passphrase, GOLDEN_V1.context), expected);
    const store = await openStore(t);
    const counted = countingKdf();
    const sealer = await openSealer(GOLDEN_V1.passphrase, store, { kdf: counted.kdf });
    for (let i = 0; i < 5; i++) assert.deepEqual(await sealer.unseal(blob, GOLDEN_V1.context), expected);
    // One derivation at open, one for the SLS1 blob's own salt, then it is kept.
    assert.equal(counted.calls(), 2);
    await assert.rejects(
      sealer.unseal(blob, 'acme-eab:acme:another-kid'),
      (err: unknown) => err instanceof StoreError && err.code === 'unsealFailed',
    );
  });

  it('derives once at open; 50 seals and 50 unseals after that derive nothing', async (t) => {
    const store = await openStore(t);
    const counted = countingKdf();
    const sealer = await openSealer(passphrase, store, { kdf: counted.kdf });
    assert.equal(counted.calls(), 1);
    for (let i = 0; i < 50; i++) {
      const blob = await sealer.seal(secret, `${context}:${i}`);
      assert.equal(Buffer.from(blob.subarray(0, 4)).toString('ascii'), 'SLS2');
      assert.deepEqual(await sealer.unseal(blob, `${context}:${i}`), secret);
    }
    // Wrong contexts (a blob moved to another row) fail without deriving either.
    const blob = await sealer.seal(secret, context);
    for (let i = 0; i < 50; i++)
      await assert.rejects(
        sealer.unseal(blob, `${context}-other`),
        (err: unknown) => err instanceof StoreError && err.code === 'unsealFailed',
      );
    assert.equal(counted.calls(), 1);
  });

  it("keeps the salt in the store's settings, so another process (or a restart) opens what this one sealed", async (t) => {
    const store = await openStore(t);
    const first = await openSealer(passphrase, store);
    const blob = await first.seal(secret, context);
    assert.match((await store.getSetting(SEAL_SALT_SETTING)) ?? '', /^scrypt:15:8:1:[A-Za-z0-9_-]{22}$/);
    const counted = countingKdf();
    const second = await openSealer(passphrase, store, { kdf: counted.kdf });
    assert.deepEqual(await second.unseal(blob, context), secret);
    assert.equal(counted.calls(), 1, 'the same salt: no derivation beyond the one at open');
    // The one-shot function opens it too, and the wrong passphrase does not.
    assert.deepEqual(await unsealSecret(blob, passphrase, context), secret);
    const wrong = await openSealer('correct horse battery stapler', store);
    await assert.rejects(
      wrong.unseal(blob, context),
      (err: unknown) => err instanceof StoreError && err.code === 'unsealFailed' && !err.message.includes('stapler'),
    );
  });

  it('opens an SLS2 blob sealed under another salt, deriving its key once', async (t) => {
    const store = await openStore(t);
    const counted = countingKdf();
    const sealer = await openSealer(passphrase, store, { kdf: counted.kdf });
    const blob = await sealSecret(secret, passphrase, context);
    for (let i = 0; i < 5; i++) assert.deepEqual(await sealer.unseal(blob, context), secret);
    assert.equal(counted.calls(), 2);
  });

  it('refuses an empty passphrase', async (t) => {
    await assert.rejects(openSealer('', await openStore(t)), TypeError);
  });
});
