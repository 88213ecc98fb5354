import { nameToString, policyRefusal, type ParsedCsr, type PublicKeyInfo, type SubjectName } from '@shortleaf/pki';
import { formatDuration, parseDuration } from './duration.js';
import { AuthorityError } from './errors.js';
import type { Policy } from './policy.js';

// The checks every front door's request passes before anything is drafted: lifetime, key type,
// names against the provisioner's policy, and the CSR's names against what the credential
// authorised. Pure functions of the request and the policy.

const wholeSecond = (ms: number): number => Math.floor(ms / 1000) * 1000;

/**
 * The lifetime to issue for: the policy's default, or a requested duration (`8h`) or RFC 3339
 * notAfter within the policy's min and max. Whole seconds: certificate times carry no fractions
 * (RFC 5280 §4.1.2.5).
 */
export function resolveLifetime(requested: unknown, policy: Policy, now: Date): number {
  if (requested === undefined || requested === null) return policy.defaultLifetimeMs;
  let ms: number;
  if (typeof requested === 'string' && /^\d/.test(requested) && /[smhd]$/.test(requested)) {
    ms = parseDuration(requested);
  } else if (
    typeof requested === 'string' &&
    /^\d{4}-\d{2}-\d{2}T/.test(requested) &&
    !Number.isNaN(Date.parse(requested))
  ) {
    ms = wholeSecond(Date.parse(requested)) - wholeSecond(now.getTime());
  } else {
    throw new AuthorityError('badLifetime', 'notAfter must be a duration such as "1h" or an RFC 3339 time');
  }
  if (ms > policy.maxLifetimeMs)
    throw new AuthorityError(
      'lifetimeTooLong',
      `the requested lifetime ${formatDuration(Math.max(ms, 0))} exceeds this provisioner's maximum of ${formatDuration(policy.maxLifetimeMs)}`,
    );
  if (ms < policy.minLifetimeMs)
    throw new AuthorityError(
      'lifetimeTooShort',
      `the requested lifetime is shorter than this provisioner's minimum of ${formatDuration(policy.minLifetimeMs)}`,
    );
  return ms;
}

/** Refuses a key type the provisioner's policy does not allow. */
export function checkKey(key: PublicKeyInfo, policy: Policy, provisioner: string): void {
  if (!policy.keyTypes.includes(key.type.name)) {
    throw new AuthorityError(
      'keyTypeNotAllowed',
      `key type ${key.type.name} is not allowed by provisioner ${provisioner} (allowed: ${policy.keyTypes.join(', ')})`,
    );
  }
}

/** Refuses the first name the provisioner's policy does not allow. */
export function checkNames(names: readonly SubjectName[], policy: Policy, provisioner: string): void {
  for (const n of names) {
    const refusal = policyRefusal(n, policy.names);
    if (refusal !== null) throw new AuthorityError('nameNotAllowed', `provisioner ${provisioner}: ${refusal}`);
  }
}

/**
 * Refuses a CSR asking for a name the credential did not authorise: names come from the credential
 * only. Names compare as (kind, value) pairs (`kind:value`; a kind has no ":"), and a CSR name's
 * kind is its GeneralName tag (pki's decodeGeneralNames), so URI:a.test never passes for DNS:a.test.
 */
export function checkCsrNames(csr: ParsedCsr, authorized: readonly SubjectName[]): void {
  const allowed = new Set(authorized.map(nameToString));
  const extra = csr.requestedNames.find((n) => !allowed.has(nameToString(n)));
  if (extra !== undefined) {
    throw new AuthorityError(
      'csrNameNotAuthorized',
      `the CSR asks for ${nameToString(extra)}, which the credential does not authorise`,
    );
  }
}
