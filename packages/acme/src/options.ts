/** A provisioner's ACME options are unusable; raised when they are set and when they are read. */
export class AcmeOptionsError extends Error {
  override readonly name = 'AcmeOptionsError';
  readonly code = 'badOptions';
}

/**
 * What an ACME provisioner adds to the policy every provisioner has (names, lifetimes, key
 * types): whether accounts need External Account Binding, the terms of service to agree to, and
 * per-account rate limits. Stored as the provisioner's `options` JSON.
 */
export interface AcmeOptions {
  requireEab: boolean;
  termsOfService: string | null;
  /** New orders one account may create in any hour. */
  ordersPerHour: number;
  /** Failed challenge validations one account may cause in any hour. */
  failedValidationsPerHour: number;
}

export const ACME_OPTION_DEFAULTS: AcmeOptions = {
  requireEab: false,
  termsOfService: null,
  ordersPerHour: 300,
  failedValidationsPerHour: 60,
};

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** Validates stored or configured options; an unknown key or bad value names itself. */
export function parseAcmeOptions(doc: unknown): AcmeOptions {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new AcmeOptionsError('ACME provisioner options must be a JSON object');
  const d = doc as Record<string, unknown>;
  for (const key of Object.keys(d))
    if (!(key in ACME_OPTION_DEFAULTS)) throw new AcmeOptionsError(`unknown ACME provisioner option "${key}"`);
  const o = { ...ACME_OPTION_DEFAULTS, ...d } as Record<string, unknown>;
  if (typeof o.requireEab !== 'boolean') throw new AcmeOptionsError('ACME option "requireEab" must be true or false');
  if (o.termsOfService !== null && (typeof o.termsOfService !== 'string' || !/^https?:\/\/\S+$/.test(o.termsOfService)))
    throw new AcmeOptionsError('ACME option "termsOfService" must be an http(s) URL');
  if (!isCount(o.ordersPerHour)) throw new AcmeOptionsError('ACME option "ordersPerHour" must be a positive integer');
  if (!isCount(o.failedValidationsPerHour))
    throw new AcmeOptionsError('ACME option "failedValidationsPerHour" must be a positive integer');
  return o as unknown as AcmeOptions;
}
