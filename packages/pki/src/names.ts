import { PkiError } from './errors.js';
import { formatIp, ipInNetwork, parseCidr, parseIp } from './ip.js';
import { parseUri, parseUriPattern, uriPatternMatches } from './uri.js';

export type NameKind = 'dns' | 'ip' | 'uri' | 'email';

/** A subject alternative name in canonical form (DNS and email domains lower-case, IPs canonical). */
export interface SubjectName {
  kind: NameKind;
  value: string;
}

/** Longest name we accept; longer ones are refused rather than truncated. */
export const MAX_NAME_LENGTH = 1024;

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Classifies and canonicalises a name as written by a person or a token: an IP address, a URI
 * (anything with a scheme, such as spiffe://), an email address (an `@` and no scheme, so never a
 * DNS name, whose labels cannot hold `@`), or a DNS name whose leftmost label may be `*`.
 */
export function parseName(raw: string): SubjectName {
  checkRaw(raw);
  const ip = parseIp(raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw);
  if (ip !== null) return { kind: 'ip', value: formatIp(ip) };
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(raw)) return { kind: 'uri', value: parseUri(raw).text };
  if (raw.includes('@')) return { kind: 'email', value: parseEmail(raw) };
  return { kind: 'dns', value: parseDns(raw) };
}

/**
 * Parses a name whose kind is already known, e.g. from a GeneralName's tag or an ACME
 * identifier's type: the text must be a valid name of that kind, never reclassified as another
 * (a URI name `attacker.test` is not the DNS name attacker.test).
 */
export function parseNameOfKind(kind: NameKind, raw: string): SubjectName {
  checkRaw(raw);
  switch (kind) {
    case 'dns':
      return { kind, value: parseDns(raw) };
    case 'uri':
      return { kind, value: parseUri(raw).text };
    case 'email':
      return { kind, value: parseEmail(raw) };
    case 'ip': {
      const ip = parseIp(raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw);
      if (ip === null)
        throw new PkiError(
          'badName',
          `${JSON.stringify(raw)} is not an IP address (IPv4 as four decimal numbers without leading zeros, or IPv6)`,
        );
      return { kind, value: formatIp(ip) };
    }
  }
}

function checkRaw(raw: string): void {
  if (typeof raw !== 'string' || raw.length === 0) throw new PkiError('badName', 'an empty name was given');
  if (raw.length > MAX_NAME_LENGTH)
    throw new PkiError('badName', `a name is longer than ${MAX_NAME_LENGTH} characters`);
  if (/[\s\u0000-\u001f\u007f]/.test(raw))
    throw new PkiError('badName', `the name ${JSON.stringify(raw)} contains whitespace or control characters`);
  if (!/^[\x21-\x7e]+$/.test(raw))
    throw new PkiError(
      'badName',
      `the name ${JSON.stringify(raw)} must be ASCII (IDNA A-labels for DNS names, percent-encoding in URIs)`,
    );
}

/**
 * Whether a host name's last label makes resolvers read it as an IPv4 address: the WHATWG URL
 * standard's "ends in a number" (all digits, or `0x` and hex), which covers every form
 * inet_aton(3) accepts (`010.20.1.1`, `0x0a.1.1.1`, `10.1`, a trailing dot). A decimal exponent
 * (`1e100`) is refused too, since number parsers read it as one. RFC 3696 §2: a top-level
 * domain is never all-numeric, so no real host name is lost.
 */
function looksNumeric(name: string): boolean {
  const last = name.slice(name.lastIndexOf('.') + 1);
  return /^[0-9]+$/.test(last) || /^0x[0-9a-f]*$/.test(last) || /^[0-9]+e[0-9]+$/.test(last);
}

function parseDns(raw: string): string {
  const name = (raw.endsWith('.') ? raw.slice(0, -1) : raw).toLowerCase();
  if (name.length > 253) throw new PkiError('badName', `the DNS name ${name} is longer than 253 characters`);
  const labels = name.split('.');
  labels.forEach((label, i) => {
    if (i === 0 && label === '*' && labels.length > 2) return;
    if (!DNS_LABEL.test(label)) throw new PkiError('badName', `${JSON.stringify(raw)} is not a valid DNS name`);
  });
  if (looksNumeric(name)) {
    throw new PkiError(
      'badName',
      `${JSON.stringify(raw)} looks like an IPv4 address, so it is not a DNS name (a host name never ends in a number, RFC 3696 §2); an IP address is four decimal numbers without leading zeros or a trailing dot, such as 10.20.1.1`,
    );
  }
  return name;
}

/** RFC 5321 §4.5.3.1: the longest path is 256 octets with its angle brackets, so 254 for the address. */
export const MAX_EMAIL_LENGTH = 254;

/**
 * A dot-atom local part (RFC 5322 §3.4.1) without quote characters: letters, digits and
 * `!#$%&*+/=?^_{|}~-`, atoms joined by single dots. Quoted strings, comments, spaces and `@`
 * are refused: verifiers and mail systems disagree about them, and none is needed for a mailbox
 * a single sign-on system names.
 */
export const EMAIL_LOCAL_PART = /^[A-Za-z0-9!#$%&*+/=?^_{|}~-]+(?:\.[A-Za-z0-9!#$%&*+/=?^_{|}~-]+)*$/;

/**
 * Parses an addr-spec conservatively, as it goes into an rfc822Name (RFC 5280 §4.2.1.6): one
 * `@`, a dot-atom local part of at most 64 characters (RFC 5321 §4.5.3.1.1) kept as written,
 * since a local part is case-sensitive (RFC 5280 §7.5), and a domain that is a valid DNS name,
 * lower-cased, with no wildcard, trailing dot or address literal. ASCII only: no
 * internationalised addresses (those need SmtpUTF8Mailbox, RFC 9598).
 */
function parseEmail(raw: string): string {
  const invalid = (why: string): never => {
    throw new PkiError('badName', `${JSON.stringify(raw)} is not an email address: ${why}`);
  };
  if (raw.length > MAX_EMAIL_LENGTH) invalid(`it is longer than ${MAX_EMAIL_LENGTH} characters`);
  const at = raw.indexOf('@');
  if (at < 0 || at !== raw.lastIndexOf('@')) invalid('an address has exactly one "@"');
  const local = raw.slice(0, at);
  const domain = raw.slice(at + 1);
  if (local.length === 0 || local.length > 64) invalid('the part before "@" must be 1 to 64 characters');
  if (!EMAIL_LOCAL_PART.test(local))
    invalid('the part before "@" must be letters, digits and !#$%&*+/=?^_{|}~- in dot-separated words (no quotes)');
  if (domain.endsWith('.') || domain.startsWith('*') || domain.startsWith('['))
    invalid('the part after "@" must be a DNS name (no trailing dot, wildcard or address literal)');
  let host = '';
  try {
    host = parseDns(domain);
  } catch (cause) {
    if (!(cause instanceof PkiError)) throw cause;
    invalid(`the part after "@" is not a DNS name (${cause.message})`);
  }
  return `${local}@${host}`;
}

/** Formats a canonical name for messages and storage, e.g. `dns:api.internal`. */
export function nameToString(n: SubjectName): string {
  return `${n.kind}:${n.value}`;
}

/**
 * Which names a provisioner may authorise. Patterns: DNS `*.svc.internal` (exactly one more
 * label), `.svc.internal` (any depth below), or an exact name; IP CIDR ranges or single
 * addresses; URI exact, or `BASE/*` for one or more whole path segments below BASE with the same
 * scheme and authority (see `parseUriPattern`); email `*@eng.example` (any mailbox at exactly
 * that domain) or an exact address. With no rule at all every name is allowed
 * (step-ca's default); once any rule exists, only names some rule matches are.
 */
export interface NamePolicy {
  dns?: readonly string[];
  ip?: readonly string[];
  uri?: readonly string[];
  email?: readonly string[];
}

/**
 * Checks a policy's patterns when it is configured, so a typo fails at start-up, not at issuance.
 * `storedUriPatterns` accepts URI rules stored before they were parsed per RFC 3986 (such as a
 * partial-segment `…/pay*`): they match nothing (see `uriMatches`), rather than making every
 * request to their provisioner fail.
 */
export function validateNamePolicy(policy: NamePolicy, opts: { storedUriPatterns?: boolean } = {}): void {
  for (const p of policy.dns ?? []) {
    if (p.endsWith('.')) throw new PkiError('badName', `the DNS pattern ${JSON.stringify(p)} must not end with a dot`);
    const body = p.startsWith('*.') ? p.slice(2) : p.startsWith('.') ? p.slice(1) : p;
    parseDns(body);
  }
  for (const p of policy.ip ?? []) {
    if (parseCidr(p) === null) throw new PkiError('badName', `${JSON.stringify(p)} is not an IP address or CIDR range`);
  }
  for (const p of policy.email ?? []) {
    try {
      parseEmail(p.startsWith('*@') ? `x${p.slice(1)}` : p);
    } catch (cause) {
      if (!(cause instanceof PkiError)) throw cause;
      throw new PkiError(
        'badName',
        `the email pattern ${JSON.stringify(p)} is refused: write *@DOMAIN or an exact address (${cause.message})`,
        { cause },
      );
    }
  }
  for (const p of opts.storedUriPatterns === true ? [] : (policy.uri ?? [])) {
    try {
      parseUriPattern(p);
    } catch (cause) {
      if (!(cause instanceof PkiError)) throw cause;
      throw new PkiError('badName', `the URI pattern ${JSON.stringify(p)} is refused: ${cause.message}`, { cause });
    }
  }
}

/**
 * `*@domain` matches every mailbox at exactly that domain (not below it); anything else is one
 * address: its local part compared as written (case-sensitive, RFC 5280 §7.5), its domain without case.
 */
function emailMatches(name: string, pattern: string): boolean {
  const at = name.lastIndexOf('@');
  const pAt = pattern.lastIndexOf('@');
  const domainMatches = name.slice(at + 1) === pattern.slice(pAt + 1).toLowerCase();
  return domainMatches && (pattern.startsWith('*@') || name.slice(0, at) === pattern.slice(0, pAt));
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

/**
 * Matches by RFC 3986 components and whole path segments, never by string prefix: the name is
 * parsed again here, so a name that did not come through `parseName` (dot segments, encoded
 * slashes…) still cannot slip under a `BASE/*` rule. A pattern that no longer parses matches nothing.
 */
function uriMatches(name: string, pattern: string): boolean {
  try {
    return uriPatternMatches(parseUri(name), parseUriPattern(pattern));
  } catch (cause) {
    if (cause instanceof PkiError) return false;
    throw cause;
  }
}

function validUriPattern(pattern: string): boolean {
  try {
    parseUriPattern(pattern);
    return true;
  } catch {
    return false;
  }
}

/** How many rules a policy has, of every kind: with none, every name is allowed. */
export const namePolicyRuleCount = (policy: NamePolicy): number =>
  (policy.dns?.length ?? 0) + (policy.ip?.length ?? 0) + (policy.uri?.length ?? 0) + (policy.email?.length ?? 0);

/**
 * Returns null when the policy allows the name, else a sentence saying which rule refused it. The
 * name is parsed again as its kind first, so one built by hand or read back from an older record
 * (an IP-looking DNS name, a URI with a dot segment) is refused even by a policy with no rules.
 */
export function policyRefusal(name: SubjectName, policy: NamePolicy): string | null {
  try {
    parseNameOfKind(name.kind, name.value);
  } catch (cause) {
    if (cause instanceof PkiError) return cause.message;
    throw cause;
  }
  const rules = namePolicyRuleCount(policy);
  if (rules === 0) return null;
  switch (name.kind) {
    case 'email':
      if ((policy.email ?? []).some((p) => emailMatches(name.value, p))) return null;
      return `email address ${name.value} is not allowed (allowed: ${(policy.email ?? []).join(', ') || 'no email addresses'})`;
    case 'dns':
      if ((policy.dns ?? []).some((p) => dnsMatches(name.value, p))) return null;
      return `DNS name ${name.value} is not allowed (allowed: ${(policy.dns ?? []).join(', ') || 'no DNS names'})`;
    case 'ip': {
      const ip = parseIp(name.value)!;
      if (
        (policy.ip ?? []).some((p) => {
          const n = parseCidr(p);
          return n !== null && ipInNetwork(ip, n);
        })
      )
        return null;
      return `IP address ${name.value} is not allowed (allowed: ${(policy.ip ?? []).join(', ') || 'no IP addresses'})`;
    }
    case 'uri': {
      if ((policy.uri ?? []).some((p) => uriMatches(name.value, p))) return null;
      const unusable = (policy.uri ?? []).filter((p) => !validUriPattern(p));
      const note =
        unusable.length === 0
          ? ''
          : `; ${unusable.join(', ')} match nothing: a URI rule is an exact URI or BASE/*, matching whole path segments`;
      return `URI ${name.value} is not allowed (allowed: ${(policy.uri ?? []).join(', ') || 'no URIs'}${note})`;
    }
  }
}
