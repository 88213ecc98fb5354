import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  bitString,
  generalizedTime,
  integer,
  namedBits,
  oid,
  readChildren,
  readOid,
  readTlv,
  sequence,
  splitSigned,
  time,
} from './der.js';
import { PkiError } from './errors.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

function assertBadDer(fn: () => unknown, fragment: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, 'badDer');
    assert.ok(err.message.includes(fragment), `message was: ${err.message}`);
    return true;
  });
}

describe('readTlv', () => {
  it('reads short and long lengths at an offset', () => {
    const short = bytes('ff 04 02 aa bb');
    assert.deepEqual(readTlv(short, 1), { tag: 0x04, start: 1, contentStart: 3, end: 5 });
    const long = new Uint8Array(3 + 0x80);
    long.set([0x04, 0x81, 0x80]);
    assert.deepEqual(readTlv(long, 0), { tag: 0x04, start: 0, contentStart: 3, end: 3 + 0x80 });
    const longer = new Uint8Array(4 + 0x100);
    longer.set([0x04, 0x82, 0x01, 0x00]);
    assert.equal(readTlv(longer, 0).end, 4 + 0x100);
  });

  it('refuses truncated input', () => {
    assertBadDer(() => readTlv(bytes('30'), 0), 'no room for a tag and length');
    assertBadDer(() => readTlv(bytes('30 05 01 02'), 0), 'content is shorter than its length says');
    assertBadDer(() => readTlv(bytes('04 82 01'), 0), 'truncated DER length');
    assertBadDer(() => readTlv(bytes('30 00'), 1), 'no room');
  });

  it('refuses indefinite lengths, which BER allows and DER does not', () => {
    assertBadDer(() => readTlv(bytes('30 80 02 01 00 00 00'), 0), 'indefinite');
  });

  it('refuses non-minimal lengths', () => {
    const five = new Uint8Array(8);
    five.set([0x04, 0x81, 0x05]);
    assertBadDer(() => readTlv(five, 0), 'not minimally encoded');
    const padded = new Uint8Array(4 + 0x80);
    padded.set([0x04, 0x82, 0x00, 0x80]);
    assertBadDer(() => readTlv(padded, 0), 'not minimally encoded');
  });

  it('refuses lengths past the buffer, and length fields wider than 4 octets', () => {
    assertBadDer(() => readTlv(bytes('04 84 7f ff ff ff 00'), 0), 'shorter than its length says');
    assertBadDer(() => readTlv(bytes('04 85 01 00 00 00 00 00'), 0), 'too large');
  });

  it('refuses multi-byte tags', () => {
    assertBadDer(() => readTlv(bytes('1f 81 00 00'), 0), 'multi-byte');
  });
});

describe('readChildren', () => {
  it('lists the children of a constructed value', () => {
    const buf = sequence(integer(1), integer(300));
    const kids = readChildren(buf, readTlv(buf, 0));
    assert.deepEqual(
      kids.map((k) => hex(buf.subarray(k.start, k.end))),
      ['020101', '0202012c'],
    );
  });

  it('refuses a child that overruns its parent', () => {
    // The parent claims 2 bytes; its child claims 5 that the buffer has but the parent does not.
    const buf = bytes('30 02 04 05 01 02 03 04 05');
    assertBadDer(() => readChildren(buf, readTlv(buf, 0)), 'overruns its parent');
  });
});

describe('splitSigned', () => {
  const tbs = sequence(integer(2), integer(7));
  const alg = sequence(oid('1.2.840.10045.4.3.2'));
  const signed = sequence(tbs, alg, bitString(bytes('deadbeef')));

  it('returns the exact to-be-signed bytes and the signature', () => {
    const parts = splitSigned(signed);
    assert.equal(hex(parts.tbs), hex(tbs));
    assert.equal(hex(parts.signature), 'deadbeef');
  });

  it('refuses trailing bytes after the SEQUENCE', () => {
    const trailing = Uint8Array.of(...signed, 0x00);
    assertBadDer(() => splitSigned(trailing), 'nothing after it');
  });

  it('refuses a structure without exactly three parts', () => {
    assertBadDer(() => splitSigned(sequence(tbs, alg)), 'three parts');
    assertBadDer(() => splitSigned(sequence(tbs, alg, bitString(bytes('00')), integer(1))), 'three parts');
  });

  it('refuses a signature BIT STRING with unused bits', () => {
    assertBadDer(() => splitSigned(sequence(tbs, alg, bitString(bytes('deadbeef'), 3))), 'BIT STRING is malformed');
  });
});

describe('readOid / oid', () => {
  const decode = (h: string): string => {
    const buf = bytes(h);
    return readOid(buf, readTlv(buf, 0));
  };

  it('decodes known OIDs', () => {
    assert.equal(decode('06 08 2a 86 48 ce 3d 04 03 02'), '1.2.840.10045.4.3.2');
    assert.equal(decode('06 03 55 1d 11'), '2.5.29.17');
    assert.equal(decode('06 09 2a 86 48 86 f7 0d 01 01 0b'), '1.2.840.113549.1.1.11');
    assert.equal(decode('06 03 2b 65 70'), '1.3.101.112');
  });

  it('round-trips what oid() encodes, including large arcs', () => {
    for (const dotted of [
      '1.3.6.1.5.5.7.48.1',
      '2.5.4.3',
      '1.2.840.113549.1.9.14',
      '1.3.6.1.4.1.311.21.20',
      '0.9.2342.19200300.100.1.25',
    ]) {
      const enc = oid(dotted);
      assert.equal(readOid(enc, readTlv(enc, 0)), dotted);
    }
    assert.equal(hex(oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
  });

  it('refuses an arc that ends mid-way', () => {
    assertBadDer(() => decode('06 02 2a 86'), 'ends mid-arc');
  });

  it('refuses non-minimal arcs, empty OIDs and other tags', () => {
    assertBadDer(() => decode('06 03 2a 80 01'), 'not minimal');
    assertBadDer(() => decode('06 00'), 'malformed OBJECT IDENTIFIER');
    assertBadDer(() => decode('04 03 55 1d 11'), 'malformed OBJECT IDENTIFIER');
  });
});

describe('time', () => {
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  it('uses UTCTime (0x17) for 2049 and GeneralizedTime (0x18) for 2050', () => {
    const y2049 = time(new Date('2049-12-31T23:59:59Z'));
    assert.equal(y2049[0], 0x17);
    assert.equal(Buffer.from(y2049.subarray(2)).toString('ascii'), '491231235959Z');
    const y2050 = time(new Date('2050-01-01T00:00:00Z'));
    assert.equal(y2050[0], 0x18);
    assert.equal(Buffer.from(y2050.subarray(2)).toString('ascii'), '20500101000000Z');
  });

  it('uses GeneralizedTime before 1950 and UTCTime from 1950', () => {
    assert.equal(time(new Date('1949-12-31T23:59:59Z'))[0], 0x18);
    assert.equal(Buffer.from(time(new Date('1950-01-01T00:00:00Z')).subarray(2)).toString('ascii'), '500101000000Z');
  });

  it('drops milliseconds rather than writing fractional seconds', () => {
    assert.equal(
      Buffer.from(time(new Date('2030-02-03T04:05:06.789Z')).subarray(2)).toString('ascii'),
      '300203040506Z',
    );
  });

  it('generalizedTime always writes four-digit years', () => {
    const t = generalizedTime(new Date('2030-02-03T04:05:06Z'));
    assert.equal(t[0], 0x18);
    assert.equal(Buffer.from(t.subarray(2)).toString('ascii'), '20300203040506Z');
  });
});

describe('namedBits', () => {
  // X.690 §11.2.2: trailing zero bits are dropped and counted as unused.
  it('encodes digitalSignature alone as 03 02 07 80', () => {
    assert.equal(hex(namedBits([0])), '03020780');
  });

  it('encodes keyCertSign + cRLSign as 03 02 01 06', () => {
    assert.equal(hex(namedBits([5, 6])), '03020106');
    assert.equal(hex(namedBits([6, 5])), '03020106');
  });

  it('encodes digitalSignature + keyEncipherment as 03 02 05 a0', () => {
    assert.equal(hex(namedBits([0, 2])), '030205a0');
  });

  it('spills into a second octet for bit 8 and encodes no bits as an empty string', () => {
    assert.equal(hex(namedBits([0, 8])), '0303078080');
    assert.equal(hex(namedBits([])), '030100');
  });
});

describe('integer', () => {
  it('adds a leading zero when the top bit is set', () => {
    assert.equal(hex(integer(0)), '020100');
    assert.equal(hex(integer(127)), '02017f');
    assert.equal(hex(integer(128)), '02020080');
    assert.equal(hex(integer(65535)), '020300ffff');
  });
});
