import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { integerBytes, readTlv } from './der.js';
import { PkiError } from './errors.js';
import { SERIAL_RANDOM_BYTES, newSerial, normalizeSerial, serialToHex } from './serial.js';

const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

/** A random source that returns `head` followed by 0x5a filler, so tests control the top octets. */
const fixed =
  (...head: number[]) =>
  (n: number): Uint8Array => {
    const out = new Uint8Array(n).fill(0x5a);
    out.set(head);
    return out;
  };

/** Reads DER INTEGER content octets as a two's-complement BigInt, as any X.509 parser would. */
function derValue(content: Uint8Array): bigint {
  let v = BigInt(`0x${Buffer.from(content).toString('hex')}`);
  if (content[0]! & 0x80) v -= 1n << BigInt(content.length * 8);
  return v;
}

/** RFC 5280 §4.1.2.2 with X.690 §8.3.2: positive, minimal, at most 20 octets. */
function assertPositiveMinimal(bytes: Uint8Array): void {
  assert.ok(bytes.length >= 1 && bytes.length <= 20, `length ${bytes.length}`);
  assert.ok(derValue(bytes) > 0n, 'serial must be positive');
  if (bytes.length > 1) {
    const redundant = (bytes[0] === 0x00 && !(bytes[1]! & 0x80)) || (bytes[0] === 0xff && bytes[1]! & 0x80);
    assert.ok(!redundant, `not minimal: ${Buffer.from(bytes).toString('hex')}`);
  }
}

describe('newSerial', () => {
  it('uses 128 random bits and returns a positive minimal INTEGER with matching hex', () => {
    let asked = 0;
    const s = newSerial((n) => {
      asked = n;
      return random(n);
    });
    assert.equal(asked, SERIAL_RANDOM_BYTES);
    assert.equal(SERIAL_RANDOM_BYTES, 16);
    assertPositiveMinimal(s.bytes);
    assert.equal(BigInt(`0x${s.hex}`), derValue(s.bytes));
  });

  it('drops a leading 0x00 so the encoding stays minimal', () => {
    const s = newSerial(fixed(0x00, 0x12));
    assert.equal(s.bytes.length, 15);
    assert.equal(s.bytes[0], 0x12);
    assertPositiveMinimal(s.bytes);
    assert.equal(s.hex, `12${'5a'.repeat(14)}`);
  });

  it('keeps one 0x00 when the next octet has its top bit set', () => {
    const s = newSerial(fixed(0x00, 0x00, 0x80));
    assert.equal(Buffer.from(s.bytes.subarray(0, 2)).toString('hex'), '0080');
    assert.equal(s.bytes.length, 15);
    assertPositiveMinimal(s.bytes);
    assert.equal(s.hex, `80${'5a'.repeat(13)}`);
  });

  it('prefixes 0x00 to a leading 0xff so the serial is not negative', () => {
    const s = newSerial(fixed(0xff, 0xff));
    assert.equal(s.bytes.length, 17);
    assert.equal(s.bytes[0], 0x00);
    assert.equal(s.bytes[1], 0xff);
    assertPositiveMinimal(s.bytes);
    assert.equal(s.hex, `ffff${'5a'.repeat(14)}`);
    assert.ok(!s.hex.startsWith('0'));
  });

  it('encodes as a DER INTEGER that reads back as the same value', () => {
    const s = newSerial(fixed(0xff));
    const enc = integerBytes(s.bytes);
    const t = readTlv(enc, 0);
    assert.equal(t.tag, 0x02);
    assert.equal(derValue(enc.subarray(t.contentStart, t.end)), BigInt(`0x${s.hex}`));
  });

  it('refuses a random source that returns only zeros, since 0 is not a valid serial', () => {
    let calls = 0;
    const zeros = (n: number): Uint8Array => {
      calls++;
      return new Uint8Array(n);
    };
    assert.throws(
      () => newSerial(zeros),
      (err: unknown) => {
        assert.ok(err instanceof PkiError);
        assert.equal(err.code, 'badCertificate');
        assert.match(err.message, /only zeros/);
        return true;
      },
    );
    assert.equal(calls, 1, 'a stuck source must fail at once, not be asked again and again');
  });

  it('refuses a random source that returns the wrong length', () => {
    assert.throws(
      () => newSerial(() => new Uint8Array(8)),
      (err: unknown) => {
        assert.ok(err instanceof PkiError);
        assert.equal(err.code, 'badCertificate');
        assert.match(err.message, /wrong length/);
        return true;
      },
    );
  });

  it('makes 1,000 unique, positive, minimal serials', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const s = newSerial(random);
      assertPositiveMinimal(s.bytes);
      assert.ok(s.bytes.length <= 17);
      assert.match(s.hex, /^[1-9a-f][0-9a-f]*$/);
      assert.equal(s.hex, serialToHex(s.bytes));
      seen.add(s.hex);
    }
    assert.equal(seen.size, 1000);
  });
});

describe('serialToHex', () => {
  it('is lower-case with no leading zeros', () => {
    assert.equal(serialToHex(Uint8Array.of(0x00, 0xab, 0x0c)), 'ab0c');
    assert.equal(serialToHex(Uint8Array.of(0x0a)), 'a');
    assert.equal(serialToHex(Uint8Array.of(0x00)), '0');
  });
});

describe('normalizeSerial', () => {
  it('accepts hex as people type it', () => {
    assert.equal(normalizeSerial('0xAB:CD'), 'abcd');
    assert.equal(normalizeSerial('  00:0A:ff '), 'aff');
    assert.equal(normalizeSerial('0X1'), '1');
    assert.equal(normalizeSerial('000'), '0');
    assert.equal(normalizeSerial('f'.repeat(40)), 'f'.repeat(40));
  });

  for (const bad of ['xyz', '', '0x', 'ab cd', '12-34', '-1', 'f'.repeat(41)]) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => normalizeSerial(bad),
        (err: unknown) => {
          assert.ok(err instanceof PkiError);
          assert.equal(err.code, 'badCertificate');
          assert.match(err.message, /is not a hexadecimal serial number/);
          return true;
        },
      );
    });
  }
});
