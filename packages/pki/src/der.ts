import { PkiError } from './errors.js';

export interface Tlv {
  tag: number;
  /** Offset of the tag byte within the buffer. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset one past the last content byte. */
  end: number;
}

/**
 * Reads one DER tag-length-value at `offset`, checking every length against the buffer. It exists
 * because signatures cover exact bytes: re-encoding a parsed structure could change them, so the
 * signed part of a CSR or certificate is sliced out of the original input instead.
 */
export function readTlv(buf: Uint8Array, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new PkiError('badDer', 'truncated DER: no room for a tag and length');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new PkiError('badDer', 'multi-byte DER tags are not used in X.509');
  let pos = offset + 1;
  const first = buf[pos++]!;
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new PkiError('badDer', 'indefinite DER lengths are not allowed');
    if (count > 4) throw new PkiError('badDer', 'DER length is too large');
    if (pos + count > buf.length) throw new PkiError('badDer', 'truncated DER length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos++]!;
    if (length < 0x80 || (count > 1 && buf[offset + 2] === 0)) {
      throw new PkiError('badDer', 'DER length is not minimally encoded');
    }
  }
  const end = pos + length;
  if (end > buf.length) throw new PkiError('badDer', 'truncated DER: the content is shorter than its length says');
  return { tag, start: offset, contentStart: pos, end };
}

/** Returns the TLVs directly inside a constructed value. */
export function readChildren(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.contentStart;
  while (pos < parent.end) {
    const child = readTlv(buf, pos);
    if (child.end > parent.end) throw new PkiError('badDer', 'DER child overruns its parent');
    out.push(child);
    pos = child.end;
  }
  return out;
}

/**
 * Splits a signed structure (certificate, CSR, CRL: SEQUENCE { tbs, algorithm, signature }) into its
 * exact to-be-signed bytes and the signature, refusing trailing data.
 */
export function splitSigned(der: Uint8Array): { tbs: Uint8Array; signature: Uint8Array } {
  const outer = readTlv(der, 0);
  if (outer.tag !== 0x30 || outer.end !== der.length) {
    throw new PkiError('badDer', 'expected one DER SEQUENCE with nothing after it');
  }
  const parts = readChildren(der, outer);
  const [tbs, , sig] = parts;
  if (parts.length !== 3 || tbs === undefined || sig === undefined || sig.tag !== 0x03) {
    throw new PkiError('badDer', 'a signed structure has three parts: data, algorithm, signature');
  }
  // BIT STRING: first content byte counts unused bits, which must be zero for a signature.
  if (sig.end - sig.contentStart < 2 || der[sig.contentStart] !== 0) {
    throw new PkiError('badDer', 'the signature BIT STRING is malformed');
  }
  return { tbs: der.subarray(tbs.start, tbs.end), signature: der.subarray(sig.contentStart + 1, sig.end) };
}

function encodeLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** Encodes one DER TLV around already-encoded contents. */
export function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const body = concat(contents);
  return concat([Uint8Array.of(tag), encodeLength(body.length), body]);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : new Uint8Array(Buffer.concat(parts));
}

export const sequence = (...items: Uint8Array[]): Uint8Array => tlv(0x30, ...items);

/** INTEGER from content octets that are already minimal and positive (serials). */
export const integerBytes = (content: Uint8Array): Uint8Array => tlv(0x02, content);

export function integer(n: number): Uint8Array {
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(0x02, Uint8Array.from(bytes));
}

export const octetString = (content: Uint8Array): Uint8Array => tlv(0x04, content);
export const bitString = (content: Uint8Array, unusedBits = 0): Uint8Array =>
  tlv(0x03, Uint8Array.of(unusedBits), content);
export const booleanTrue = (): Uint8Array => Uint8Array.of(0x01, 0x01, 0xff);
export const nullValue = (): Uint8Array => Uint8Array.of(0x05, 0x00);

export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Uint8Array.from(out));
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, always whole seconds, Z. */
export function time(date: Date): Uint8Array {
  const y = date.getUTCFullYear();
  const rest = `${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${pad(y % 100)}${rest}`, 'ascii'));
  return tlv(0x18, Buffer.from(`${pad(y, 4)}${rest}`, 'ascii'));
}

/** GeneralizedTime always (OCSP and CRL fields that RFC 6960/5280 fix to it). */
export function generalizedTime(date: Date): Uint8Array {
  const s = `${pad(date.getUTCFullYear(), 4)}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`;
  return tlv(0x18, Buffer.from(s, 'ascii'));
}

/** A named BIT STRING in DER: trailing zero bits dropped, unused-bits count set (X.690 §11.2.2). */
export function namedBits(bitNumbers: readonly number[]): Uint8Array {
  if (bitNumbers.length === 0) return bitString(new Uint8Array(0));
  const highest = Math.max(...bitNumbers);
  const bytes = new Uint8Array(Math.floor(highest / 8) + 1);
  for (const b of bitNumbers) bytes[Math.floor(b / 8)]! |= 0x80 >> (b % 8);
  return bitString(bytes, 7 - (highest % 8));
}

/** Decodes an OBJECT IDENTIFIER TLV to dotted form, refusing malformed arcs. */
export function readOid(buf: Uint8Array, t: Tlv): string {
  if (t.tag !== 0x06 || t.end === t.contentStart || t.end - t.contentStart > 64)
    throw new PkiError('badDer', 'malformed OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let value = 0;
  for (let i = t.contentStart; i < t.end; i++) {
    const b = buf[i]!;
    if (value === 0 && b === 0x80) throw new PkiError('badDer', 'OBJECT IDENTIFIER arc is not minimal');
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new PkiError('badDer', 'OBJECT IDENTIFIER arc is too large');
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    } else if (i === t.end - 1) {
      throw new PkiError('badDer', 'OBJECT IDENTIFIER ends mid-arc');
    }
  }
  return arcs.join('.');
}
