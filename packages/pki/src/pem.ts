import { PkiError } from './errors.js';

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n\t ]*?)-----END \1-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Splits PEM text into its blocks. Text between blocks is ignored (OpenSSL writes comments there),
 * but a block whose body is not base64, or text with no block at all, is refused.
 */
export function decodePem(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(BLOCK)) {
    const body = (match[2] ?? '').replace(/\s+/g, '');
    if (!BASE64_BODY.test(body) || body.length % 4 !== 0 || body.length === 0) {
      throw new PkiError('badPem', `the PEM block "${match[1]}" does not hold valid base64`);
    }
    blocks.push({ label: match[1] ?? '', der: new Uint8Array(Buffer.from(body, 'base64')) });
  }
  if (blocks.length === 0) throw new PkiError('badPem', 'no PEM block (-----BEGIN ...-----) was found');
  return blocks;
}

/** Returns the DER of the single block with one of the given labels, refusing anything else. */
export function decodePemOne(text: string, labels: readonly string[]): Uint8Array {
  const blocks = decodePem(text);
  const wanted = blocks.filter((b) => labels.includes(b.label));
  const [first] = wanted;
  if (wanted.length !== 1 || first === undefined) {
    throw new PkiError('badPem', `expected exactly one PEM block labelled ${labels.join(' or ')}`);
  }
  return first.der;
}

/** Encodes DER as PEM with 64-character lines, as RFC 7468 §2 asks. */
export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Encodes certificates (leaf first) as one PEM bundle. */
export function encodeCertificates(ders: readonly Uint8Array[]): string {
  return ders.map((d) => encodePem('CERTIFICATE', d)).join('');
}
