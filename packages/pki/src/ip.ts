import { PkiError } from './errors.js';

/** Parses an IPv4 or IPv6 address to its 4 or 16 bytes; null if it is not an address. */
export function parseIp(text: string): Uint8Array | null {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    const parts = text.split('.').map(Number);
    if (parts.some((p, i) => p > 255 || (text.split('.')[i]!.length > 1 && text.split('.')[i]!.startsWith('0'))))
      return null;
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
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
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

/**
 * The IPv4 address an IPv6 address stands for, or null: IPv4-mapped `::ffff:a.b.c.d` (RFC 4291
 * §2.5.5.2, what a dual-stack socket dials as IPv4), the deprecated IPv4-compatible `::a.b.c.d`
 * (§2.5.5.1; `::` and `::1` are not of that form) and the NAT64 well-known prefix
 * `64:ff9b::/96` (RFC 6052 §2.1). Used so a rule about an IPv4 network holds for every spelling.
 */
export function embeddedIpv4(ip: Uint8Array): Uint8Array | null {
  if (ip.length !== 16) return null;
  const zeros = (from: number, to: number) => ip.subarray(from, to).every((b) => b === 0);
  const mapped = zeros(0, 10) && ip[10] === 0xff && ip[11] === 0xff;
  const compatible = zeros(0, 12) && !(zeros(12, 15) && ip[15]! <= 1);
  const nat64 = ip[0] === 0x00 && ip[1] === 0x64 && ip[2] === 0xff && ip[3] === 0x9b && zeros(4, 12);
  return mapped || compatible || nat64 ? ip.slice(12) : null;
}

/** Kinds of address that never name one remote host (see SPECIAL_ADDRESSES). */
export type SpecialAddressKind = 'unspecified' | 'multicast' | 'broadcast' | 'link-local';

/**
 * Special-purpose ranges (RFC 6890) a connection must not be aimed at as if they were a host:
 * the unspecified addresses reach the local machine (Linux and others treat a connect to
 * 0.0.0.0 or :: as one to loopback), multicast and broadcast reach many, and link-local holds
 * the cloud metadata service 169.254.169.254.
 */
const SPECIAL_ADDRESSES: ReadonlyArray<{ cidr: string; kind: SpecialAddressKind }> = [
  { cidr: '0.0.0.0/8', kind: 'unspecified' }, // RFC 1122 §3.2.1.3 "this host on this network"
  { cidr: '::/128', kind: 'unspecified' }, // RFC 4291 §2.5.2
  { cidr: '224.0.0.0/4', kind: 'multicast' }, // RFC 5771
  { cidr: 'ff00::/8', kind: 'multicast' }, // RFC 4291 §2.7
  { cidr: '255.255.255.255/32', kind: 'broadcast' }, // RFC 919 §7 limited broadcast
  { cidr: '169.254.0.0/16', kind: 'link-local' }, // RFC 3927
  { cidr: 'fe80::/10', kind: 'link-local' }, // RFC 4291 §2.5.6
];

const SPECIAL_NETWORKS = SPECIAL_ADDRESSES.map(({ cidr, kind }) => ({ cidr, kind, net: parseCidr(cidr)! }));

/**
 * Whether an address is unspecified, multicast, broadcast or link-local, in any of its spellings
 * (an IPv6 form of an IPv4 address counts as that IPv4 address); null for every other address.
 */
export function specialAddress(ip: Uint8Array): { kind: SpecialAddressKind; cidr: string } | null {
  const v4 = embeddedIpv4(ip);
  for (const candidate of v4 === null ? [ip] : [ip, v4]) {
    const hit = SPECIAL_NETWORKS.find((s) => ipInNetwork(candidate, s.net));
    if (hit !== undefined) return { kind: hit.kind, cidr: hit.cidr };
  }
  return null;
}
