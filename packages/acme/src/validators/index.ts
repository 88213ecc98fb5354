import { formatIp, parseIp, parseName } from '@shortleaf/pki';
import { AcmeError } from '../errors.js';
import { Deadline } from './deadline.js';
import { errorCode } from './describe.js';
import { validateDns01 } from './dns-01.js';
import { validateHttp01 } from './http-01.js';
import { createNetworkPolicy } from './network-policy.js';
import { createLookup } from './resolve.js';
import { validateTlsAlpn01 } from './tls-alpn-01.js';
import type { ChallengeToValidate, ValidationConfig, ValidationContext, Validator } from './types.js';

export type { ChallengeToValidate, ValidationConfig, Validator } from './types.js';
export { DEFAULT_DENY_NETWORKS } from './network-policy.js';

/** One row per challenge type (RFC 8555 §8.3, §8.4; RFC 8737). */
const VALIDATORS: Record<
  ChallengeToValidate['type'],
  (challenge: ChallengeToValidate, ctx: ValidationContext) => Promise<void>
> = {
  'http-01': validateHttp01,
  'dns-01': validateDns01,
  'tls-alpn-01': validateTlsAlpn01,
};

/** RFC 8555 §8.1: a token is base64url; it goes into a URL path, so nothing else gets through. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

/**
 * Creates the validation authority's check for one configuration (checked here, so a bad hosts
 * entry or resolver fails at startup). The validator resolves when the challenge is satisfied and
 * otherwise throws `AcmeError` only, whatever the remote side does; each attempt takes at most
 * `timeoutMs` and closes every socket and timer it opened.
 */
export function createValidator(config: ValidationConfig): Validator {
  if (!Number.isInteger(config.timeoutMs) || config.timeoutMs <= 0)
    throw new Error(`validation timeoutMs must be a positive integer, not ${config.timeoutMs}`);
  for (const port of [config.httpPort, config.tlsPort]) {
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new Error(`validation port ${port} is not a TCP port`);
  }
  const lookup = createLookup(config);
  // Every connection a validator opens goes through dial.ts, which applies this policy to the
  // address it dials and to the connected socket's peer (each http-01 hop, each tls-alpn-01 handshake).
  const policy = createNetworkPolicy(config);
  return async (challenge) => {
    const validate = Object.hasOwn(VALIDATORS, challenge.type) ? VALIDATORS[challenge.type] : undefined;
    if (validate === undefined)
      throw new AcmeError('malformed', `unknown challenge type ${JSON.stringify(challenge.type)}`);
    if (!TOKEN.test(challenge.token)) throw new AcmeError('malformed', 'the challenge token is not base64url');
    const normalized = { ...challenge, identifier: normalizeIdentifier(challenge.identifier) };
    const deadline = new Deadline(config.timeoutMs);
    try {
      await validate(normalized, { config, lookup, policy, deadline });
    } catch (cause) {
      if (cause instanceof AcmeError) throw cause;
      throw new AcmeError(
        'connection',
        `${challenge.type} validation of ${normalized.identifier.value} failed unexpectedly (${errorCode(cause)})`,
        { cause },
      );
    } finally {
      deadline.dispose();
    }
  };
}

/** The identifier in canonical form: a lower-case DNS name without wildcard, or a formatted IP. */
function normalizeIdentifier(identifier: ChallengeToValidate['identifier']): ChallengeToValidate['identifier'] {
  if (identifier.type === 'ip') {
    const ip = parseIp(identifier.value);
    if (ip === null) throw new AcmeError('malformed', `${JSON.stringify(identifier.value)} is not an IP address`);
    return { type: 'ip', value: formatIp(ip) };
  }
  if (identifier.value.startsWith('*.'))
    throw new AcmeError(
      'malformed',
      `${JSON.stringify(identifier.value)} is a wildcard; a wildcard is validated at its base name`,
    );
  let name;
  try {
    name = parseName(identifier.value);
  } catch {
    name = null;
  }
  if (name?.kind !== 'dns' || name.value.includes('*'))
    throw new AcmeError('malformed', `${JSON.stringify(identifier.value)} is not a DNS name that can be validated`);
  return { type: 'dns', value: name.value };
}
