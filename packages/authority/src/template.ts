import {
  EMAIL_LOCAL_PART,
  EXT_KEY_USAGE_NAMES,
  PkiError,
  SUBJECT_ATTRIBUTE_NAMES,
  encodeName,
  extKeyUsageOid,
  namePolicyRuleCount,
  parseName,
  parseNameOfKind,
  parseUriPattern,
  policyRefusal,
  type ExtKeyUsageName,
  type NamePolicy,
  type SubjectAttributes,
  type SubjectName,
  type UriPattern,
} from '@shortleaf/pki';
import { formatDuration, parseDuration } from './duration.js';
import { AuthorityError } from './errors.js';
import { parsePolicy, type Policy } from './policy.js';
import { BUILT_IN_PROVISIONERS } from './provisioners/index.js';
import type { AuthorityStore } from './ports.js';
import { REGISTERED_CLAIMS } from './token.js';

/** One piece of a URI template: literal text, or the value of a token claim. */
type UriPart = { literal: string } | { claim: string };

/**
 * A SAN built from the token's claims: a URI (`spiffe://example.org/ns/{namespace}/sa/{service}`),
 * a DNS name (`{serviceaccount}.{namespace}.svc.example.org`) or an email address (`{email}`,
 * `{preferred_username}@eng.example`).
 */
export interface UriTemplate {
  kind: 'uri' | 'dns' | 'email';
  /** As configured, for messages. */
  text: string;
  /** Where it was configured, e.g. `templates.services.uris[0]`. */
  where: string;
  parts: readonly UriPart[];
}

/**
 * A provisioner's certificate template, checked: what every leaf that provisioner issues carries
 * besides the names its credential authorised. It cannot make a CA: there is no key for it.
 */
export interface CertificateTemplate {
  /** Where it was configured, e.g. `templates.services`, for messages. */
  where: string;
  subject: SubjectAttributes;
  /** The leaf's extended key usages; absent keeps the default (serverAuth, clientAuth). */
  extKeyUsage?: readonly ExtKeyUsageName[];
  uris: readonly UriTemplate[];
  /** DNS names, each placeholder standing for exactly one label. */
  dnsNames: readonly UriTemplate[];
  /** Email addresses: a placeholder is the whole address, one dot-atom before `@`, or one label after it. */
  emails: readonly UriTemplate[];
  /** Replaces the provisioner policy's default lifetime; a requested notAfter still wins within min..max. */
  lifetimeMs?: number;
}

const TEMPLATE_KEYS = ['subject', 'extKeyUsage', 'uris', 'dnsNames', 'emails', 'lifetime'] as const;

// Keys someone might reach for to make a CA or change the key usage: refused with the reason.
const CA_KEYS = new Set([
  'isCa',
  'ca',
  'basicConstraints',
  'keyUsage',
  'pathLen',
  'pathLenConstraint',
  'nameConstraints',
]);

/** A claim name a template can use as `{name}`: an identifier, as JSON claim names usually are. */
export const CLAIM_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * What a claim value must look like to be put into a URI: one path segment of letters, digits,
 * `.`, `_` and `-`, starting with a letter or digit. No `/`, `%`, `@`, `:`, `?` or `#`, so a value
 * can never climb out of its segment (`..`), reach another host, or change how the URI parses.
 */
export const CLAIM_VALUE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * What a claim value must look like to be put into a DNS name: exactly one label (RFC 1035), so
 * a value can never add a label (`evil.com`) or make the name a wildcard.
 */
export const DNS_CLAIM_VALUE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Registered claims a template may not use; `sub` it may, for tokens whose `sub` is an identity (OIDC). */
const REFUSED_PLACEHOLDERS = REGISTERED_CLAIMS.filter((c) => c !== 'sub');

function fail(message: string): never {
  throw new AuthorityError('badTemplate', message);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks the `templates` section of the configuration: provisioner name → template. Every problem
 * throws `badTemplate` naming the exact key.
 */
export function parseTemplates(doc: unknown, where = 'templates'): Map<string, CertificateTemplate> {
  if (doc === undefined) return new Map();
  if (!isObject(doc)) return fail(`"${where}" must be an object mapping provisioner names to templates`);
  return new Map(Object.entries(doc).map(([name, t]) => [name, parseTemplate(t, `${where}.${name}`)]));
}

/**
 * Checks one template document (`where` is its key in the configuration, for messages) and
 * returns it typed. Unknown keys, keys that would make a CA, unknown or refused subject fields and
 * extended key usages, malformed `{claim}` placeholders and bad lifetimes all throw `badTemplate`.
 */
export function parseTemplate(doc: unknown, where: string): CertificateTemplate {
  if (!isObject(doc)) return fail(`template "${where}" must be an object (keys: ${TEMPLATE_KEYS.join(', ')})`);
  for (const key of Object.keys(doc)) {
    if (CA_KEYS.has(key))
      fail(
        `template key "${where}.${key}" is not allowed: templates cannot make CA certificates (a provisioner's certificates are always leaves, CA:FALSE with the leaf key usage)`,
      );
    if (!(TEMPLATE_KEYS as readonly string[]).includes(key))
      fail(`unknown template key "${where}.${key}" (known keys: ${TEMPLATE_KEYS.join(', ')})`);
  }
  const template: CertificateTemplate = {
    where,
    subject: parseSubject(doc.subject, `${where}.subject`),
    uris: parseUris(doc.uris, `${where}.uris`),
    dnsNames: parseDnsNames(doc.dnsNames, `${where}.dnsNames`),
    emails: parseEmails(doc.emails, `${where}.emails`),
  };
  if (doc.extKeyUsage !== undefined) template.extKeyUsage = parseExtKeyUsage(doc.extKeyUsage, `${where}.extKeyUsage`);
  if (doc.lifetime !== undefined) template.lifetimeMs = parseLifetime(doc.lifetime, `${where}.lifetime`);
  return template;
}

function parseSubject(doc: unknown, where: string): SubjectAttributes {
  if (doc === undefined) return {};
  if (!isObject(doc))
    return fail(`template key "${where}" must be an object (keys: ${SUBJECT_ATTRIBUTE_NAMES.join(', ')})`);
  const subject: SubjectAttributes = {};
  for (const [key, value] of Object.entries(doc)) {
    if (key === 'commonName')
      fail(
        `template key "${where}.commonName" is not allowed: the common name comes from the token's subject, like every name`,
      );
    if (!(SUBJECT_ATTRIBUTE_NAMES as readonly string[]).includes(key))
      fail(`unknown template key "${where}.${key}" (known keys: ${SUBJECT_ATTRIBUTE_NAMES.join(', ')})`);
    if (typeof value !== 'string') fail(`template key "${where}.${key}" must be a string`);
    const name = key as keyof SubjectAttributes;
    try {
      encodeName({ [name]: value });
    } catch (cause) {
      if (cause instanceof PkiError) fail(`template key "${where}.${key}": ${cause.message}`);
      throw cause;
    }
    subject[name] = value as string;
  }
  return subject;
}

function parseExtKeyUsage(doc: unknown, where: string): ExtKeyUsageName[] {
  if (!Array.isArray(doc) || doc.length === 0)
    return fail(`template key "${where}" must be a non-empty list of: ${EXT_KEY_USAGE_NAMES.join(', ')}`);
  doc.forEach((name: unknown, i) => {
    if (typeof name !== 'string') fail(`template key "${where}[${i}]" must be a string`);
    try {
      extKeyUsageOid(name as string);
    } catch (cause) {
      if (cause instanceof PkiError) fail(`template key "${where}[${i}]": ${cause.message}`);
      throw cause;
    }
    if (doc.indexOf(name) !== i) fail(`template key "${where}[${i}]": ${name as string} is listed twice`);
  });
  return doc as ExtKeyUsageName[];
}

function parseLifetime(doc: unknown, where: string): number {
  if (typeof doc !== 'string') return fail(`template key "${where}" must be a duration such as "8h"`);
  let ms = 0;
  try {
    ms = parseDuration(doc);
  } catch (cause) {
    fail(`template key "${where}": ${(cause as Error).message}`);
  }
  if (ms <= 0) fail(`template key "${where}" must be longer than 0s`);
  return ms;
}

function parseUris(doc: unknown, where: string): UriTemplate[] {
  if (doc === undefined) return [];
  if (!Array.isArray(doc))
    return fail(
      `template key "${where}" must be a list of URI templates such as "spiffe://example.org/ns/{namespace}/sa/{service}"`,
    );
  return doc.map((text: unknown, i) => parseUriTemplate(text, `${where}[${i}]`));
}

function parseDnsNames(doc: unknown, where: string): UriTemplate[] {
  if (doc === undefined) return [];
  if (!Array.isArray(doc))
    return fail(
      `template key "${where}" must be a list of DNS name templates such as "{serviceaccount}.{namespace}.svc"`,
    );
  return doc.map((text: unknown, i) => parseUriTemplate(text, `${where}[${i}]`, 'dns'));
}

function parseEmails(doc: unknown, where: string): UriTemplate[] {
  if (doc === undefined) return [];
  if (!Array.isArray(doc))
    return fail(
      `template key "${where}" must be a list of email templates such as "{email}" or "{preferred_username}@eng.example"`,
    );
  return doc.map((text: unknown, i) => parseUriTemplate(text, `${where}[${i}]`, 'email'));
}

/**
 * Where a placeholder sits, which decides what its value may be: a URI path segment, a DNS label,
 * an email address's local part or one label of its domain, or a whole email address.
 */
type PlaceholderRole = 'segment' | 'label' | 'local' | 'domain' | 'address';

/**
 * The role of each part of a template (literals too, unused). An email template is one
 * placeholder standing for the whole address, or has exactly one literal `@`: placeholders before
 * it fill the local part, after it the domain, so no value decides which side of `@` it lands on.
 */
function placeholderRoles(kind: UriTemplate['kind'], parts: readonly UriPart[], where: string): PlaceholderRole[] {
  if (kind === 'uri') return parts.map(() => 'segment');
  if (kind === 'dns') return parts.map(() => 'label');
  if (parts.length === 1 && 'claim' in parts[0]!) return ['address'];
  const ats = parts.flatMap((p, i) => ('literal' in p ? [...p.literal].flatMap((c) => (c === '@' ? [i] : [])) : []));
  if (ats.length !== 1)
    fail(
      `template key "${where}": an email template is one placeholder for the whole address ("{email}") or has exactly one literal "@" ("{preferred_username}@eng.example")`,
    );
  return parts.map((_, i) => (i < ats[0]! ? 'local' : 'domain'));
}

/** Splits `spiffe://example.org/ns/{namespace}` into literals and claims; any stray brace is an error. */
function parseUriTemplate(text: unknown, where: string, kind: UriTemplate['kind'] = 'uri'): UriTemplate {
  if (typeof text !== 'string') return fail(`template key "${where}" must be a string`);
  const parts: UriPart[] = [];
  let rest = text;
  while (rest.length > 0) {
    const open = rest.indexOf('{');
    const close = rest.indexOf('}');
    if (close >= 0 && (open < 0 || close < open))
      fail(`template key "${where}": "}" without a matching "{" in ${JSON.stringify(text)}`);
    if (open < 0) {
      parts.push({ literal: rest });
      break;
    }
    if (open > 0) parts.push({ literal: rest.slice(0, open) });
    const end = rest.indexOf('}', open);
    if (end < 0) fail(`template key "${where}": "{" without a matching "}" in ${JSON.stringify(text)}`);
    const claim = rest.slice(open + 1, end);
    if (!CLAIM_NAME.test(claim))
      fail(
        `template key "${where}": {${claim}} is not a claim placeholder; write {name} with a claim name of letters, digits and "_"`,
      );
    if (REFUSED_PLACEHOLDERS.includes(claim))
      fail(
        `template key "${where}": {${claim}} names a registered token claim; a template may use only the token's own claims (shortleaf token --claim KEY=VALUE)`,
      );
    parts.push({ claim });
    rest = rest.slice(end + 1);
  }
  const first = parts[0];
  if (
    kind === 'uri' &&
    (first === undefined || !('literal' in first) || !/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(first.literal))
  ) {
    fail(`template key "${where}": ${JSON.stringify(text)} must start with a literal scheme such as "spiffe://"`);
  }
  placeholderRoles(kind, parts, where); // an email template's "@" must be literal, and only one
  const template: UriTemplate = { kind, text, where, parts };
  // With a harmless value in every placeholder, the result must already be a valid name: the
  // literal parts alone cannot add a dot segment, a query to a SPIFFE ID, a second "@", or
  // anything else a name is refused for.
  try {
    parseNameOfKind(
      kind,
      render(template, (_, role) => (role === 'address' ? 'x@x.example' : 'x')),
    );
  } catch (cause) {
    fail(`template key "${where}": ${(cause as Error).message}`);
  }
  return template;
}

function render(t: UriTemplate, value: (claim: string, role: PlaceholderRole) => string): string {
  const roles = placeholderRoles(t.kind, t.parts, t.where);
  return t.parts.map((p, i) => ('literal' in p ? p.literal : value(p.claim, roles[i]!))).join('');
}

/** Null when a claim value fits its place in a name, else what it must look like. */
function placeholderRefusal(value: string, role: PlaceholderRole): string | null {
  switch (role) {
    case 'segment':
      return CLAIM_VALUE.test(value)
        ? null
        : 'it must be 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit (no "/", "%", "@" or ":")';
    case 'label':
    case 'domain':
      return DNS_CLAIM_VALUE.test(value) ? null : 'it must be one DNS label, 1 to 63 letters, digits or "-" (no ".")';
    case 'local':
      return value.length <= 64 && EMAIL_LOCAL_PART.test(value)
        ? null
        : 'it must be one local part of an address: at most 64 letters, digits and !#$%&*+/=?^_{|}~- in dot-separated words (no "@", quotes or spaces)';
    case 'address':
      try {
        parseNameOfKind('email', value);
        return null;
      } catch (cause) {
        if (!(cause instanceof PkiError)) throw cause;
        return `it must be one email address: ${cause.message}`;
      }
  }
}

/**
 * Builds a template's SANs from a token's claims. A claim the template names but the token lacks
 * is `templateClaimMissing`; a value that does not fit its place (see `placeholderRefusal`) is
 * `templateClaimInvalid`. The caller still checks the results against the provisioner's name policy.
 */
export function renderTemplateUris(
  template: Pick<CertificateTemplate, 'uris'> & Partial<Pick<CertificateTemplate, 'dnsNames' | 'emails'>>,
  claims: Readonly<Record<string, string>>,
): SubjectName[] {
  return [...template.uris, ...(template.dnsNames ?? []), ...(template.emails ?? [])].map((t) => {
    const uri = render(t, (claim, role) => {
      const value = Object.hasOwn(claims, claim) ? claims[claim] : undefined;
      if (typeof value !== 'string')
        throw new AuthorityError(
          'templateClaimMissing',
          `the token has no "${claim}" claim, which ${t.where} (${t.text}) needs; mint it with --claim ${claim}=VALUE`,
        );
      const refusal = placeholderRefusal(value, role);
      if (refusal !== null)
        throw new AuthorityError(
          'templateClaimInvalid',
          `the token claim "${claim}" cannot go into ${t.where}: ${refusal}`,
        );
      return value;
    });
    try {
      return parseNameOfKind(t.kind, uri);
    } catch (cause) {
      throw new AuthorityError(
        'templateClaimInvalid',
        `the token's claims make ${t.where} an invalid ${KIND_WORDS[t.kind]}: ${(cause as Error).message}`,
        { cause },
      );
    }
  });
}

const KIND_WORDS = { uri: 'URI', dns: 'DNS name', email: 'email address' } as const;

/** The provisioner's policy with the template's lifetime as its default, kept within min..max. */
export function applyTemplateLifetime(policy: Policy, template: CertificateTemplate | undefined): Policy {
  if (template?.lifetimeMs === undefined) return policy;
  return {
    ...policy,
    defaultLifetimeMs: Math.min(Math.max(template.lifetimeMs, policy.minLifetimeMs), policy.maxLifetimeMs),
  };
}

/**
 * Whether some rendering of a URI template could pass the name policy: the literal text before
 * the first placeholder must agree with an exact URI or lie at or below a `BASE/*` rule's base. A
 * template that no token could ever satisfy is a configuration mistake, caught at start-up rather
 * than at every issuance; each rendered URI is still parsed and matched by whole segments then.
 */
function couldPass(t: UriTemplate, names: NamePolicy): string | null {
  if (t.parts.every((p) => 'literal' in p)) return policyRefusal(parseNameOfKind(t.kind, t.text), names);
  // A DNS or email template's placeholders may sit anywhere; each rendering meets the policy at issuance.
  if (t.kind !== 'uri') return null;
  if (namePolicyRuleCount(names) === 0) return null;
  const first = t.parts[0];
  const prefix = first !== undefined && 'literal' in first ? first.literal : '';
  const ok = (names.uri ?? []).some((p) => {
    let pattern: UriPattern;
    try {
      pattern = parseUriPattern(p);
    } catch {
      return false; // a stored rule from before RFC 3986 parsing matches nothing
    }
    if ('exact' in pattern) return pattern.exact.text.startsWith(prefix);
    const base = `${pattern.below.text}/`;
    return prefix.startsWith(base) || base.startsWith(prefix);
  });
  return ok
    ? null
    : `no URI starting ${JSON.stringify(prefix)} is allowed (allowed: ${(names.uri ?? []).join(', ') || 'no URIs'})`;
}

/**
 * Checks templates against the provisioners in the store, at `serve` start-up: each names an
 * existing provisioner, its lifetime lies within that provisioner's min..max, its URIs could pass
 * the name policy, and an ACME provisioner gets no URIs (its names are proven by challenges, and
 * a template must not add one nobody proved). Throws `badTemplate` naming the key.
 */
export async function assertTemplatesFitProvisioners(
  templates: ReadonlyMap<string, CertificateTemplate>,
  store: Pick<AuthorityStore, 'getProvisioner'>,
): Promise<void> {
  for (const [name, t] of templates) {
    const row = await store.getProvisioner(name);
    if (row === null)
      fail(
        `template "${t.where}" is for provisioner ${JSON.stringify(name)}, which does not exist (shortleaf provisioner list shows them)`,
      );
    const policy = parsePolicy(JSON.parse(row.policy), { stored: true });
    if (t.lifetimeMs !== undefined && (t.lifetimeMs < policy.minLifetimeMs || t.lifetimeMs > policy.maxLifetimeMs)) {
      fail(
        `template key "${t.where}.lifetime" (${formatDuration(t.lifetimeMs)}) is outside provisioner ${name}'s policy: ${formatDuration(policy.minLifetimeMs)} to ${formatDuration(policy.maxLifetimeMs)}`,
      );
    }
    const named = (['uris', 'dnsNames', 'emails'] as const).find((key) => t[key].length > 0);
    if (row.type === 'acme' && named !== undefined) {
      fail(
        `template key "${t.where}.${named}" is not allowed: ${name} is an ACME provisioner, whose names must be proven by challenges`,
      );
    }
    const offered = BUILT_IN_PROVISIONERS.find(row.type)?.templateClaims;
    for (const u of [...t.uris, ...t.dnsNames, ...t.emails]) {
      const claim = u.parts.find((p) => 'claim' in p && offered !== undefined && !offered.includes(p.claim));
      if (claim !== undefined && 'claim' in claim)
        fail(
          `template key "${u.where}": {${claim.claim}} is never in provisioner ${name}'s tokens (${row.type} tokens offer ${offered!.map((c) => `{${c}}`).join(', ')})`,
        );
      const refusal = couldPass(u, policy.names);
      if (refusal !== null)
        fail(`template key "${u.where}" can never pass provisioner ${name}'s name policy: ${refusal}`);
    }
  }
}
