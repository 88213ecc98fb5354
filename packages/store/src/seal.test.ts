import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StoreError } from './errors.js';
import { sealSecret, unsealSecret } from './seal.js';

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
    assert.equal(Buffer.from(blob.subarray(0, 4)).toString('ascii'), 'SLS1');
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
    blob.set(Buffer.from('SLS2', 'ascii'), 0);
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
