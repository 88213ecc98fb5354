/**
 * Byte-level mutations for the property tests of every package (`@shortleaf/pki/test-mutations`,
 * imported only by tests): bit flips,
 * truncations, insertions, deletions, overwritten bytes and changed DER length fields, applied
 * to a real, valid encoding so that the generated inputs get past the first checks.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList, TBSCertificate, type TBSCertList } from '@peculiar/asn1-x509';
import fc from 'fast-check';
import type { Signer } from './crypto.js';
import { signTbs } from './encode.js';

/**
 * A TBS-mutating hook: parses to-be-signed certificate bytes with @peculiar/asn1-x509, lets `edit`
 * change the structure (a flag, a duplicated or foreign extension, the version) and encodes it
 * again. Tests use it to stand in for an encoder that writes something other than the draft.
 */
export function editTbsCertificate(tbs: Uint8Array, edit: (t: TBSCertificate) => void): Uint8Array {
  const parsed = AsnConvert.parse(tbs, TBSCertificate);
  edit(parsed);
  return new Uint8Array(AsnConvert.serialize(parsed));
}

export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'length'; which: number; value: Uint8Array };

/** The same hook for a CRL: edits TBSCertList and signs the result again with `signer`. */
export function editCrl(der: Uint8Array, signer: Signer, edit: (t: TBSCertList) => void): Uint8Array {
  const list = AsnConvert.parse(der, CertificateList);
  edit(list.tbsCertList);
  return signTbs(new Uint8Array(AsnConvert.serialize(list.tbsCertList)), signer);
}

/** Byte values that make a DER length field lie: short, long-form, indefinite, huge. */
const LENGTHS = [
  [0x00],
  [0x01],
  [0x7f],
  [0x80],
  [0x81, 0x00],
  [0x81, 0xff],
  [0x82, 0xff, 0xff],
  [0x84, 0xff, 0xff, 0xff, 0xff],
  [0x85, 1, 0, 0, 0, 0],
  [0x89],
  [0xff],
].map((b) => Uint8Array.from(b));

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('length' as const), which: fc.nat(), value: fc.constantFrom(...LENGTHS) }),
    weight: 4,
  },
);

/** Offsets of every DER length field, walking constructed values (and OCTET/BIT STRINGs that hold DER). */
export function lengthOffsets(der: Uint8Array): number[] {
  const out: number[] = [];
  const walk = (start: number, end: number, depth: number): void => {
    let pos = start;
    while (pos + 2 <= end && depth < 32) {
      const tag = der[pos]!;
      const first = der[pos + 1]!;
      const count = first < 0x80 ? 0 : first & 0x7f;
      if (count > 4 || pos + 2 + count > end) return;
      let length = first < 0x80 ? first : 0;
      for (let i = 0; i < count; i++) length = length * 256 + der[pos + 2 + i]!;
      const contentStart = pos + 2 + count;
      const contentEnd = contentStart + length;
      if (contentEnd > end) return;
      out.push(pos + 1);
      if (tag & 0x20) walk(contentStart, contentEnd, depth + 1);
      else if (tag === 0x04) walk(contentStart, contentEnd, depth + 1);
      else if (tag === 0x03) walk(contentStart + 1, contentEnd, depth + 1);
      pos = contentEnd;
    }
  };
  walk(0, der.length, 0);
  return out;
}

/** Applies mutations in order; each position is taken modulo the current length. */
export function mutate(input: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let buf = Uint8Array.from(input);
  for (const m of mutations) {
    const n = buf.length;
    switch (m.kind) {
      case 'flip':
        if (n > 0) buf[m.at % n] = buf[m.at % n]! ^ (1 << m.bit);
        break;
      case 'truncate':
        buf = buf.slice(0, n === 0 ? 0 : m.at % n);
        break;
      case 'insert': {
        const at = m.at % (n + 1);
        buf = Uint8Array.from([...buf.subarray(0, at), ...m.bytes, ...buf.subarray(at)]);
        break;
      }
      case 'delete': {
        const at = n === 0 ? 0 : m.at % n;
        buf = Uint8Array.from([...buf.subarray(0, at), ...buf.subarray(at + m.count)]);
        break;
      }
      case 'set':
        if (n > 0) buf[m.at % n] = m.value;
        break;
      case 'length': {
        const offsets = lengthOffsets(buf);
        if (offsets.length === 0) break;
        const at = offsets[m.which % offsets.length]!;
        const first = buf[at]!;
        const old = first < 0x80 ? 1 : 1 + (first & 0x7f);
        buf = Uint8Array.from([...buf.subarray(0, at), ...m.value, ...buf.subarray(at + old)]);
        break;
      }
    }
  }
  return buf;
}

/** One to four mutations of a valid input. */
export const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 4 });

/** The error and every cause under it: a TypeError wrapped in a domain error is still a bug. */
export function causeChain(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e: unknown = err; e !== undefined && out.length < 10; e = (e as { cause?: unknown }).cause) out.push(e);
  return out;
}

/**
 * Whether an error or any cause in its chain is a programming error raised by our own code
 * (a TypeError, RangeError or ReferenceError whose first stack frame outside Node's internals is
 * not in node_modules).
 * Libraries such as jose throw TypeError for malformed input on purpose; wrapping those in a
 * domain error is the right answer, so they do not count.
 */
export function isProgrammingError(err: unknown): boolean {
  return causeChain(err).some((e) => {
    if (!(e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError)) return false;
    const frame = (e.stack ?? '')
      .split('\n')
      .find((line) => line.trimStart().startsWith('at ') && !/[( ]node:/.test(line));
    return frame === undefined || !frame.includes('node_modules');
  });
}
