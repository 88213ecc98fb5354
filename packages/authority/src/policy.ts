import { KEY_TYPE_NAMES, keyTypeByName, validateNamePolicy, type KeyTypeName, type NamePolicy } from '@shortleaf/pki';
import { parseDuration } from './duration.js';
import { AuthorityError } from './errors.js';

/** A provisioner's policy as stored (JSON) and as configured by `shortleaf provisioner add`. */
export interface PolicyDocument {
  names?: NamePolicy;
  defaultLifetime?: string;
  maxLifetime?: string;
  minLifetime?: string;
  keyTypes?: KeyTypeName[];
}

/** The same policy, checked and in the units the authority computes with. */
export interface Policy {
  names: NamePolicy;
  defaultLifetimeMs: number;
  maxLifetimeMs: number;
  minLifetimeMs: number;
  keyTypes: readonly KeyTypeName[];
}

export const POLICY_DEFAULTS = { defaultLifetime: '24h', maxLifetime: '7d', minLifetime: '1m' } as const;

const POLICY_KEYS = new Set(['names', 'defaultLifetime', 'maxLifetime', 'minLifetime', 'keyTypes']);
const NAME_KEYS = new Set(['dns', 'ip', 'uri']);

/** Validates a stored or configured policy; an unknown key or bad value names itself in the error. */
export function parsePolicy(doc: unknown): Policy {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new AuthorityError('badPolicy', 'a policy must be a JSON object');
  for (const key of Object.keys(doc)) if (!POLICY_KEYS.has(key)) throw new AuthorityError('badPolicy', `unknown policy key "${key}"`);
  const d = doc as PolicyDocument;
  const names = d.names ?? {};
  for (const key of Object.keys(names)) if (!NAME_KEYS.has(key)) throw new AuthorityError('badPolicy', `unknown policy key "names.${key}"`);
  for (const key of NAME_KEYS) {
    const list = (names as Record<string, unknown>)[key];
    if (list !== undefined && (!Array.isArray(list) || list.some((x) => typeof x !== 'string'))) {
      throw new AuthorityError('badPolicy', `policy key "names.${key}" must be a list of strings`);
    }
  }
  try {
    validateNamePolicy(names);
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
  const duration = (key: 'defaultLifetime' | 'maxLifetime' | 'minLifetime'): number => {
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
    defaultLifetimeMs: d.defaultLifetime === undefined ? Math.min(duration('defaultLifetime'), maxLifetimeMs) : duration('defaultLifetime'),
    maxLifetimeMs,
    minLifetimeMs: duration('minLifetime'),
    keyTypes,
  };
  if (policy.minLifetimeMs > policy.defaultLifetimeMs || policy.defaultLifetimeMs > policy.maxLifetimeMs) {
    throw new AuthorityError('badPolicy', 'policy lifetimes must satisfy minLifetime ≤ defaultLifetime ≤ maxLifetime');
  }
  return policy;
}
