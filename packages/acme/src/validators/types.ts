import type { Deadline } from './deadline.js';
import type { NetworkPolicy } from './network-policy.js';
import type { Lookup } from './resolve.js';

/** Where and how long the validation authority looks for a challenge response. */
export interface ValidationConfig {
  /** Where http-01 is fetched; 80 in production. */
  httpPort: number;
  /** Where tls-alpn-01 connects; 443 in production. */
  tlsPort: number;
  /** `host:port` (IPv4, or `[v6]:port`) of the DNS server to ask; null = the system resolver. */
  dnsResolver: string | null;
  /** Static lower-case name → IP map consulted before DNS for http-01 and tls-alpn-01 addresses. */
  hosts: Record<string, string>;
  /** Budget for one validation attempt, all steps included. */
  timeoutMs: number;
  /**
   * CIDRs never connected to, after resolution and on every redirect; default DEFAULT_DENY_NETWORKS
   * (link-local, metadata). Unspecified, multicast, broadcast and link-local addresses are refused
   * whatever this and `allowNetworks` say.
   */
  denyNetworks?: readonly string[] | undefined;
  /** When set, the only CIDRs connected to (deny still wins); null or absent allows every other address. */
  allowNetworks?: readonly string[] | null | undefined;
}

export interface ChallengeToValidate {
  type: 'http-01' | 'dns-01' | 'tls-alpn-01';
  /** For a wildcard order, the base name without `*.`. */
  identifier: { type: 'dns' | 'ip'; value: string };
  token: string;
  /** `token + '.' + base64url(JWK thumbprint)`, computed by the caller (RFC 8555 §8.1). */
  keyAuthorization: string;
}

/** Resolves when the challenge is satisfied; throws `AcmeError` when it is not. */
export type Validator = (challenge: ChallengeToValidate) => Promise<void>;

/** What one challenge validator gets besides the challenge. */
export interface ValidationContext {
  config: ValidationConfig;
  /** Resolves names; says nothing about whether an address may be dialled (that is `policy`). */
  lookup: Lookup;
  /** Applied by `dial` to every address before and after connecting. */
  policy: NetworkPolicy;
  deadline: Deadline;
}
