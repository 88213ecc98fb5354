import { KEY_TYPE_NAMES, keyTypeByName, validateNamePolicy, type KeyTypeName, type NamePolicy } from '@shortleaf/pki';
import { parseDuration } from './duration.js';
import { AuthorityError } from './errors.js';
import { BUILT_IN_PROVISIONERS, type ProvisionerRegistry } from './provisioners/index.js';

/** A provisioner's policy as stored (JSON) and as configured by `shortleaf provisioner add`. */
export interface PolicyDocument {
  names?: NamePolicy;
  defaultLifetime?: string;
  maxLifetime?: string;
  minLifetime?: string;
  keyTypes?: KeyTypeName[];
  /** How long a lineage may renew before its holder presents its credential again (`30d`). */
  maxLineageAge?: string;
  /** Whether certificates renew over mutual TLS; default yes for token provisioners, no for ACME. */
  mtlsRenewal?: boolean;
}

/** The same policy, checked and in the units the authority computes with. */
export interface Policy {
  names: NamePolicy;
  defaultLifetimeMs: number;
  maxLifetimeMs: number;
  minLifetimeMs: number;
  keyTypes: readonly KeyTypeName[];
  maxLineageAgeMs: number;
  /** Undefined: the provisioner type decides (see `mtlsRenewalAllowed`). */
  mtlsRenewal?: boolean;
}

// maxLineageAge: a stolen key renews itself for at most this long unnoticed; a month is the
// rotation period most operators already run credentials on, and ACME clients re-validate sooner.
export const POLICY_DEFAULTS = {
  defaultLifetime: '24h',
  maxLifetime: '7d',
  minLifetime: '1m',
  maxLineageAge: '30d',
} as const;

const POLICY_KEYS = new Set([
  'names',
  'defaultLifetime',
  'maxLifetime',
  'minLifetime',
  'keyTypes',
  'maxLineageAge',
  'mtlsRenewal',
]);
const NAME_KEYS = new Set(['dns', 'ip', 'uri', 'email']);

/**
 * Validates a stored or configured policy; an unknown key or bad value names itself in the error.
 * `stored` is for a policy read back from the database: a URI rule written before URI rules were
 * parsed per RFC 3986 (a partial-segment `…/pay*`) then matches nothing, with a refusal saying
 * why, instead of failing every request to the provisioner. New policies get every check.
 */
export function parsePolicy(doc: unknown, opts: { stored?: boolean } = {}): Policy {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new AuthorityError('badPolicy', 'a policy must be a JSON object');
  for (const key of Object.keys(doc))
    if (!POLICY_KEYS.has(key)) throw new AuthorityError('badPolicy', `unknown policy key "${key}"`);
  const d = doc as PolicyDocument;
  const names = d.names ?? {};
  for (const key of Object.keys(names))
    if (!NAME_KEYS.has(key)) throw new AuthorityError('badPolicy', `unknown policy key "names.${key}"`);
  for (const key of NAME_KEYS) {
    const list = (names as Record<string, unknown>)[key];
    if (list !== undefined && (!Array.isArray(list) || list.some((x) => typeof x !== 'string'))) {
      throw new AuthorityError('badPolicy', `policy key "names.${key}" must be a list of strings`);
    }
  }
  try {
    validateNamePolicy(names, { storedUriPatterns: opts.stored === true });
  } catch (cause) {
    throw new AuthorityError('badPolicy', (cause as Error).message, { cause });
  }
  const keyTypes = d.keyTypes ?? [...KEY_TYPE_NAMES];
  for (const k of keyTypes) {
    try {
      keyTypeByName(k);
    } catch (cause) {
      throw new AuthorityError('badPolicy', (cause as Error).message, { cause });
    }
  }
  const duration = (key: 'defaultLifetime' | 'maxLifetime' | 'minLifetime' | 'maxLineageAge'): number => {
    try {
      return parseDuration(d[key] ?? POLICY_DEFAULTS[key]);
    } catch (cause) {
      throw new AuthorityError('badPolicy', `policy key "${key}": ${(cause as Error).message}`, { cause });
    }
  };
  const maxLifetimeMs = duration('maxLifetime');
  const policy: Policy = {
    names,
    // A maximum below the 24 h default, given alone, lowers the default with it.
    defaultLifetimeMs:
      d.defaultLifetime === undefined
        ? Math.min(duration('defaultLifetime'), maxLifetimeMs)
        : duration('defaultLifetime'),
    maxLifetimeMs,
    minLifetimeMs: duration('minLifetime'),
    keyTypes,
    // Unset, it is never shorter than the longest certificate: a first one must not outlive it.
    maxLineageAgeMs:
      d.maxLineageAge === undefined ? Math.max(duration('maxLineageAge'), maxLifetimeMs) : duration('maxLineageAge'),
    ...(d.mtlsRenewal === undefined ? {} : { mtlsRenewal: d.mtlsRenewal }),
  };
  if (d.mtlsRenewal !== undefined && typeof d.mtlsRenewal !== 'boolean')
    throw new AuthorityError('badPolicy', 'policy key "mtlsRenewal" must be true or false');
  if (policy.maxLineageAgeMs < policy.maxLifetimeMs) {
    throw new AuthorityError(
      'badPolicy',
      'policy key "maxLineageAge" must be at least maxLifetime: a first certificate would outlive its lineage',
    );
  }
  if (policy.minLifetimeMs > policy.defaultLifetimeMs || policy.defaultLifetimeMs > policy.maxLifetimeMs) {
    throw new AuthorityError('badPolicy', 'policy lifetimes must satisfy minLifetime ≤ defaultLifetime ≤ maxLifetime');
  }
  return policy;
}

/**
 * Whether a provisioner's certificates may renew over mutual TLS. An ACME certificate may not
 * unless its policy says so: its names were proven by challenges against authorizations that
 * expire, and renewing by ACME checks them again, whereas mTLS renewal would carry them forever.
 */
export function mtlsRenewalAllowed(
  policy: Policy,
  provisionerType: string,
  registry: ProvisionerRegistry = BUILT_IN_PROVISIONERS,
): boolean {
  return policy.mtlsRenewal ?? registry.find(provisionerType)?.mtlsRenewalByDefault ?? true;
}
