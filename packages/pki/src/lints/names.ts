import { nameToString, type SubjectName } from '../names.js';
import type { Lint } from './lint.js';

/** RFC 5280 §4.2.1.6: a leaf identifies its subject in the SAN; an empty SAN identifies nobody. */
export const subjectAltNamePresent: Lint = {
  name: 'subject_alt_name_present',
  check: (d, { rules }) =>
    rules.requireSubjectAltName && d.subjectAltNames.length === 0
      ? 'a leaf needs at least one subject alternative name'
      : null,
};

/** Shortleaf invariant: every name comes from the credential, never from the CSR alone. */
export const namesAuthorized: Lint = {
  name: 'names_authorized',
  check: (d, ctx) => {
    // Profiles without names of their own (CAs, OCSP signers) need no credential's names to check.
    if (ctx.authorizedNames === undefined)
      return ctx.rules.requireSubjectAltName
        ? `a ${d.profile} was drafted with no authorised names to check against`
        : null;
    const allowed = new Set(ctx.authorizedNames.map(nameToString));
    const extra = d.subjectAltNames.find((n) => !allowed.has(nameToString(n)));
    if (extra !== undefined) return `${nameToString(extra)} was not authorised`;
    // Only a DNS name may be the CN: verifiers match a hostname-like CN against DNS name
    // constraints when the SAN has no DNS name (OpenSSL does), so an IP there can break the chain.
    if (
      ctx.rules.requireSubjectAltName &&
      d.commonName !== null &&
      !d.subjectAltNames.some((n) => n.kind === 'dns' && n.value === d.commonName)
    ) {
      return `common name ${d.commonName} is not one of the DNS subject alternative names`;
    }
    return null;
  },
};

/** No name appears twice in the SAN. */
export const subjectAltNamesUnique: Lint = {
  name: 'subject_alt_names_unique',
  check: (d) => {
    const seen = new Set(d.subjectAltNames.map(nameToString));
    return seen.size === d.subjectAltNames.length ? null : 'a subject alternative name appears twice';
  },
};

function dnsWithin(name: string, base: string): boolean {
  const b = base.toLowerCase();
  if (b.startsWith('.')) return name.endsWith(b);
  return name === b || name.endsWith(`.${b}`);
}

function uriHost(uri: string): string | null {
  try {
    return new URL(uri).hostname.toLowerCase() || null;
  } catch {
    return null;
  }
}

/**
 * Whether an address lies in an rfc822Name subtree (RFC 5280 §4.2.1.10): a subtree with `@` is one
 * mailbox (local part as written, domain without case), `.domain` every host below domain, and a
 * bare host every mailbox at exactly that host.
 */
function emailWithin(address: string, base: string): boolean {
  const at = address.lastIndexOf('@');
  const domain = address.slice(at + 1).toLowerCase();
  if (base.includes('@')) {
    const bAt = base.lastIndexOf('@');
    return address.slice(0, at) === base.slice(0, bAt) && domain === base.slice(bAt + 1).toLowerCase();
  }
  const b = base.toLowerCase();
  return b.startsWith('.') ? domain.endsWith(b) : domain === b;
}

/**
 * Whether a name satisfies an issuer's permitted subtrees, judged as OpenSSL and RFC 5280 §4.2.1.10
 * do: each name form is restricted only by subtrees of its own form, so an intermediate whose
 * permitted subtrees name no email (a DNS-only constraint) leaves email addresses unrestricted,
 * and one with any rfc822Name subtree admits only addresses inside one of them.
 */
export function withinConstraints(
  n: SubjectName,
  dns: readonly string[],
  uri: readonly string[],
  email: readonly string[],
): boolean {
  if (n.kind === 'email') return email.length === 0 || email.some((b) => emailWithin(n.value, b));
  // RFC 5280 §4.2.1.10: a constraint restricts only names of its own type; URI constraints match the host.
  if (n.kind === 'dns') return dns.length === 0 || dns.some((b) => dnsWithin(n.value, b.replace(/^\*\./, '.')));
  if (n.kind === 'uri') {
    // A URI constraint names exactly one host, or with a leading dot the hosts below it.
    const host = uriHost(n.value);
    return (
      uri.length === 0 ||
      (host !== null &&
        uri.some((b) => (b.startsWith('.') ? host.endsWith(b.toLowerCase()) : host === b.toLowerCase())))
    );
  }
  return true;
}

/** RFC 5280 §4.2.1.10: never sign a name the issuer's own name constraints forbid; verifiers would refuse it. */
export const namesWithinIssuerConstraints: Lint = {
  name: 'names_within_issuer_constraints',
  check: (d, ctx) => {
    if (ctx.issuer === null) return null;
    const { permittedDns, permittedUri, permittedEmail } = ctx.issuer;
    const bad = d.subjectAltNames.find((n) => !withinConstraints(n, permittedDns, permittedUri, permittedEmail));
    return bad === undefined ? null : `${nameToString(bad)} is outside the issuer's name constraints`;
  },
};
