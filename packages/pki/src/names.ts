import { PkiError } from './errors.js';
import { formatIp, ipInNetwork, parseCidr, parseIp } from './ip.js';

export type NameKind = 'dns' | 'ip' | 'uri';

/** A subject alternative name in canonical form (DNS lower-case, IPs canonical). */
export interface SubjectName {
  kind: NameKind;
  value: string;
}

/** Longest name we accept; longer ones are refused rather than truncated. */
export const MAX_NAME_LENGTH = 1024;

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Classifies and canonicalises a name as written by a person or a token: an IP address, a URI
 * (anything with a scheme, such as spiffe://), or a DNS name whose leftmost label may be `*`.
 */
export function parseName(raw: string): SubjectName {
  if (typeof raw !== 'string' || raw.length === 0) throw new PkiError('badName', 'an empty name was given');
  if (raw.length > MAX_NAME_LENGTH) throw new PkiError('badName', `a name is longer than ${MAX_NAME_LENGTH} characters`);
  if (/[\s\u0000-\u001f\u007f]/.test(raw)) throw new PkiError('badName', `the name ${JSON.stringify(raw)} contains whitespace or control characters`);
  const ip = parseIp(raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw);
  if (ip !== null) return { kind: 'ip', value: formatIp(ip) };
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(raw)) return { kind: 'uri', value: parseUri(raw) };
  return { kind: 'dns', value: parseDns(raw) };
}

function parseUri(raw: string): string {
  try {
    new URL(raw);
  } catch {
    throw new PkiError('badName', `${JSON.stringify(raw)} is not a valid URI`);
  }
  if (!/^[\x21-\x7e]+$/.test(raw)) throw new PkiError('badName', `the URI ${JSON.stringify(raw)} must be ASCII (percent-encode the rest)`);
  // Keep the caller's spelling: SPIFFE IDs and similar are compared byte for byte by relying parties.
  return raw;
}

function parseDns(raw: string): string {
  const name = (raw.endsWith('.') ? raw.slice(0, -1) : raw).toLowerCase();
  if (name.length > 253) throw new PkiError('badName', `the DNS name ${name} is longer than 253 characters`);
  const labels = name.split('.');
  labels.forEach((label, i) => {
    if (i === 0 && label === '*' && labels.length > 2) return;
    if (!DNS_LABEL.test(label)) throw new PkiError('badName', `${JSON.stringify(raw)} is not a valid DNS name`);
  });
  return name;
}

/** Formats a canonical name for messages and storage, e.g. `dns:api.internal`. */
export function nameToString(n: SubjectName): string {
  return `${n.kind}:${n.value}`;
}

/**
 * Which names a provisioner may authorise. Patterns: DNS `*.svc.internal` (exactly one more
 * label), `.svc.internal` (any depth below), or an exact name; IP CIDR ranges or single
 * addresses; URI exact, or a prefix ending in `*`. With no rule at all every name is allowed
 * (step-ca's default); once any rule exists, only names some rule matches are.
 */
export interface NamePolicy {
  dns?: readonly string[];
  ip?: readonly string[];
  uri?: readonly string[];
}

/** Checks a policy's patterns when it is configured, so a typo fails at start-up, not at issuance. */
export function validateNamePolicy(policy: NamePolicy): void {
  for (const p of policy.dns ?? []) {
    if (p.endsWith('.')) throw new PkiError('badName', `the DNS pattern ${JSON.stringify(p)} must not end with a dot`);
    const body = p.startsWith('*.') ? p.slice(2) : p.startsWith('.') ? p.slice(1) : p;
    parseDns(body);
  }
  for (const p of policy.ip ?? []) {
    if (parseCidr(p) === null) throw new PkiError('badName', `${JSON.stringify(p)} is not an IP address or CIDR range`);
  }
  for (const p of policy.uri ?? []) {
    if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(p)) throw new PkiError('badName', `the URI pattern ${JSON.stringify(p)} needs a scheme`);
  }
}

function dnsMatches(name: string, pattern: string): boolean {
  const p = pattern.toLowerCase();
  if (p.startsWith('*.')) {
    const suffix = p.slice(1);
    return name.endsWith(suffix) && !name.slice(0, -suffix.length).includes('.') && name.length > suffix.length;
  }
  if (p.startsWith('.')) return name.endsWith(p) && name.length > p.length;
  return name === p;
}

function uriMatches(name: string, pattern: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

/** Returns null when the policy allows the name, else a sentence saying which rule refused it. */
export function policyRefusal(name: SubjectName, policy: NamePolicy): string | null {
  const rules = (policy.dns?.length ?? 0) + (policy.ip?.length ?? 0) + (policy.uri?.length ?? 0);
  if (rules === 0) return null;
  switch (name.kind) {
    case 'dns':
      if ((policy.dns ?? []).some((p) => dnsMatches(name.value, p))) return null;
      return `DNS name ${name.value} is not allowed (allowed: ${(policy.dns ?? []).join(', ') || 'no DNS names'})`;
    case 'ip': {
      const ip = parseIp(name.value)!;
      if ((policy.ip ?? []).some((p) => { const n = parseCidr(p); return n !== null && ipInNetwork(ip, n); })) return null;
      return `IP address ${name.value} is not allowed (allowed: ${(policy.ip ?? []).join(', ') || 'no IP addresses'})`;
    }
    case 'uri':
      if ((policy.uri ?? []).some((p) => uriMatches(name.value, p))) return null;
      return `URI ${name.value} is not allowed (allowed: ${(policy.uri ?? []).join(', ') || 'no URIs'})`;
  }
}
