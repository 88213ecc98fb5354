import { PkiError, nameToString, parseName, parseNameOfKind, type SubjectName } from '@shortleaf/pki';
import { AcmeError, type AcmeIdentifier, type Subproblem } from './errors.js';

/** Most identifiers one order may carry; more is refused rather than truncated. */
export const MAX_ORDER_IDENTIFIERS = 100;

/**
 * Reads `identifiers` of a newOrder: types `dns` and `ip` (RFC 8738) only, each name in canonical
 * form (DNS lower-case, IPs as RFC 5952 text), no duplicates. A wildcard is a DNS name whose
 * first label is `*`. Every bad identifier is reported at once, as subproblems.
 */
export function parseOrderIdentifiers(
  value: unknown,
  maxIdentifiers: number = MAX_ORDER_IDENTIFIERS,
): AcmeIdentifier[] {
  if (!Array.isArray(value) || value.length === 0)
    throw new AcmeError('malformed', '"identifiers" must be a non-empty array of {type, value} objects');
  if (value.length > maxIdentifiers)
    throw new AcmeError(
      'rejectedIdentifier',
      `the order has ${value.length} identifiers; the limit is ${maxIdentifiers} (limits.maxNames)`,
    );
  const out: AcmeIdentifier[] = [];
  const problems: Subproblem[] = [];
  let unsupported = false;
  for (const item of value as unknown[]) {
    const { type, value: raw } = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    if (typeof type !== 'string' || typeof raw !== 'string')
      throw new AcmeError('malformed', 'each identifier must be an object with string "type" and "value"');
    if (type !== 'dns' && type !== 'ip') {
      unsupported = true;
      problems.push({
        type: 'unsupportedIdentifier',
        detail: `identifier type ${JSON.stringify(type)} is not supported (use "dns" or "ip")`,
        identifier: { type: 'dns', value: raw.slice(0, 255) },
      });
      continue;
    }
    // Parsed as the kind the client declared, never reclassified: a `dns` identifier that looks
    // like an IPv4 address (`010.20.1.1`, `10.1`) is refused, not issued as a DNS name.
    let name: SubjectName;
    try {
      name = parseNameOfKind(type, raw);
    } catch (cause) {
      if (!(cause instanceof PkiError)) throw cause;
      // RFC 8738 §3: an `ip` identifier holds an address; anything else there is malformed.
      if (type === 'ip')
        problems.push({
          type: 'malformed',
          detail: `${JSON.stringify(raw)} is not a valid IP address`,
          identifier: { type, value: raw.slice(0, 255) },
        });
      else
        problems.push({
          type: 'rejectedIdentifier',
          detail: cause.message,
          identifier: { type, value: raw.slice(0, 255) },
        });
      continue;
    }
    if (!out.some((i) => i.type === type && i.value === name.value)) out.push({ type, value: name.value });
  }
  if (problems.length > 0) {
    const first = problems[0]!;
    const type =
      unsupported && problems.every((p) => p.type === 'unsupportedIdentifier')
        ? 'unsupportedIdentifier'
        : problems.length === 1
          ? first.type
          : 'rejectedIdentifier';
    throw new AcmeError(
      type,
      problems.length === 1 ? first.detail : `${problems.length} identifiers were refused; see subproblems`,
      { subproblems: problems },
    );
  }
  return out;
}

export const toSubjectName = (i: AcmeIdentifier): SubjectName => ({ kind: i.type, value: i.value });
export const identifierKey = (i: AcmeIdentifier): string => `${i.type}:${i.value}`;

/** RFC 8555 §7.1.4: an authorization for `*.x` names the base domain `x` and says `wildcard`. */
export function authorizationIdentifier(i: AcmeIdentifier): { identifier: AcmeIdentifier; wildcard: boolean } {
  if (i.type === 'dns' && i.value.startsWith('*.'))
    return { identifier: { type: 'dns', value: i.value.slice(2) }, wildcard: true };
  return { identifier: i, wildcard: false };
}

/**
 * RFC 8555 §7.4: the CSR must ask for exactly the order's identifiers, no more and no fewer.
 * The subject CN, if any, must be one of them. Compared as (kind, value) pairs: a CSR name's kind
 * is its GeneralName tag, so a URI name never stands in for a `dns` identifier of the same text.
 */
export function checkCsrMatchesOrder(
  csr: { commonName: string | null; requestedNames: SubjectName[] },
  identifiers: readonly AcmeIdentifier[],
): void {
  const wanted = new Set(identifiers.map((i) => nameToString(toSubjectName(i))));
  const asked = new Set(csr.requestedNames.map(nameToString));
  if (csr.commonName !== null) {
    let cn: string;
    try {
      cn = nameToString(parseName(csr.commonName));
    } catch {
      throw new AcmeError(
        'badCSR',
        `the CSR's common name ${JSON.stringify(csr.commonName)} is not one of the order's identifiers`,
      );
    }
    if (!wanted.has(cn))
      throw new AcmeError('badCSR', `the CSR's common name ${csr.commonName} is not one of the order's identifiers`);
    asked.add(cn);
  }
  const extra = [...asked].filter((n) => !wanted.has(n));
  const missing = [...wanted].filter((n) => !asked.has(n));
  if (extra.length > 0)
    throw new AcmeError('badCSR', `the CSR asks for ${extra.join(', ')}, which the order does not have`);
  if (missing.length > 0)
    throw new AcmeError('badCSR', `the CSR does not ask for ${missing.join(', ')}, which the order has`);
}
