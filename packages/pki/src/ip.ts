import { PkiError } from './errors.js';

/** Parses an IPv4 or IPv6 address to its 4 or 16 bytes; null if it is not an address. */
export function parseIp(text: string): Uint8Array | null {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    const parts = text.split('.').map(Number);
    if (parts.some((p, i) => p > 255 || (text.split('.')[i]!.length > 1 && text.split('.')[i]!.startsWith('0')))) return null;
    return new Uint8Array(parts);
  }
  if (!text.includes(':') || !/^[0-9a-fA-F:.]+$/.test(text)) return null;
  let head = text;
  let tail4: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tail4 = parseIp(text.slice(lastColon + 1));
    if (tail4 === null || tail4.length !== 4) return null;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...right];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = all[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  if (tail4 !== null) out.set(tail4, 12);
  return out;
}

/** Formats 4 or 16 address bytes canonically (RFC 5952 for IPv6). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new PkiError('badName', 'an IP address has 4 or 16 bytes');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952 §4.2.3: compress the longest run of two or more zero groups, the first if tied.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Parses `a.b.c.d/n`, `x::/n` or a bare address (a /32 or /128) into a network. */
export function parseCidr(text: string): { network: Uint8Array; prefix: number } | null {
  const [addr, bits, extra] = text.split('/');
  if (addr === undefined || extra !== undefined) return null;
  const network = parseIp(addr);
  if (network === null) return null;
  const max = network.length * 8;
  if (bits === undefined) return { network, prefix: max };
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return null;
  return { network, prefix: Number(bits) };
}

/** Whether an address lies inside a network of the same family. */
export function ipInNetwork(ip: Uint8Array, net: { network: Uint8Array; prefix: number }): boolean {
  if (ip.length !== net.network.length) return false;
  let bits = net.prefix;
  for (let i = 0; i < ip.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip[i]! & mask) !== (net.network[i]! & mask)) return false;
  }
  return true;
}
