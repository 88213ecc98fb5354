import { PkiError } from './errors.js';

/** Bytes of randomness in a serial: 128 bits, twice what the CA/Browser Forum asks for. */
export const SERIAL_RANDOM_BYTES = 16;

/**
 * Makes a fresh serial from 128 random bits, as a positive minimal DER integer (≤ 17 octets, well
 * under RFC 5280 §4.1.2.2's 20) and its canonical lower-case hex form used as the database key.
 * Randomness is a parameter so the PKI core stays free of hidden inputs.
 */
export function newSerial(randomBytes: (n: number) => Uint8Array): { bytes: Uint8Array; hex: string } {
  const raw = randomBytes(SERIAL_RANDOM_BYTES);
  if (raw.length !== SERIAL_RANDOM_BYTES)
    throw new PkiError('badCertificate', 'the random source returned the wrong length');
  let start = 0;
  while (start < raw.length - 1 && raw[start] === 0) start++;
  const trimmed = raw.subarray(start);
  // 128 zero bits from a working CSPRNG will not happen; from a broken one, refuse to go on.
  if (trimmed.length === 1 && trimmed[0] === 0)
    throw new PkiError('badCertificate', 'the random source returned only zeros');
  // A set top bit would read as negative: DER needs a leading zero octet then.
  const bytes = trimmed[0]! & 0x80 ? Uint8Array.of(0, ...trimmed) : Uint8Array.from(trimmed);
  return { bytes, hex: serialToHex(bytes) };
}

/** Canonical hex of a DER INTEGER's content octets: lower-case, no leading zeros. */
export function serialToHex(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex').replace(/^0+/, '');
  return hex === '' ? '0' : hex;
}

/** Parses a serial typed by a person (hex, optional colons or 0x), into canonical hex. */
export function normalizeSerial(text: string): string {
  const clean = text.trim().toLowerCase().replace(/^0x/, '').replace(/:/g, '');
  if (!/^[0-9a-f]{1,40}$/.test(clean))
    throw new PkiError('badCertificate', `${JSON.stringify(text)} is not a hexadecimal serial number`);
  return clean.replace(/^0+(?=.)/, '');
}
