import { formatIp, ipInNetwork, parseCidr, parseIp } from '@shortleaf/pki';
import { AcmeError } from '../errors.js';

type Network = { network: Uint8Array; prefix: number };

/**
 * Networks validation never connects to unless told otherwise: IPv4 link-local (which holds the
 * cloud metadata address 169.254.169.254) and IPv6 link-local. IPv4-mapped IPv6 forms
 * (::ffff:169.254.169.254) are checked as the IPv4 address they map.
 */
export const DEFAULT_DENY_NETWORKS: readonly string[] = ['169.254.0.0/16', 'fe80::/10'];

/** Where validation may connect: never into `deny`; when `allow` is set, only into it. */
export interface NetworkPolicy {
  /** Throws AcmeError `rejectedIdentifier` naming the address and the rule when it may not be dialled. */
  check(address: string, host: string): void;
}

function parseNetworks(list: readonly string[], key: string): Network[] {
  return list.map((text) => {
    const net = parseCidr(text);
    if (net === null) throw new Error(`acme.validation.${key}: ${JSON.stringify(text)} is not an IP network such as 10.0.0.0/8 or fd00::/8`);
    return net;
  });
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it is. */
function unmap(ip: Uint8Array): Uint8Array {
  const mapped = ip.length === 16 && ip.subarray(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff;
  return mapped ? ip.slice(12) : ip;
}

/**
 * Builds the policy from configured CIDR lists (checked eagerly: a typo fails at startup). It is
 * applied to the address actually dialled, after the hosts map and DNS, for every http-01 hop and
 * every tls-alpn-01 connection, so neither a name nor a redirect can point validation elsewhere.
 */
export function createNetworkPolicy(config: { denyNetworks?: readonly string[] | undefined; allowNetworks?: readonly string[] | null | undefined }): NetworkPolicy {
  const denyText = config.denyNetworks ?? DEFAULT_DENY_NETWORKS;
  const deny = parseNetworks(denyText, 'denyNetworks');
  const allowText = config.allowNetworks ?? null;
  const allow = allowText === null ? null : parseNetworks(allowText, 'allowNetworks');
  const inAny = (ip: Uint8Array, nets: readonly Network[]) => nets.findIndex((n) => ipInNetwork(ip, n) || ipInNetwork(unmap(ip), n));
  return {
    check(address, host) {
      const ip = parseIp(address);
      if (ip === null) throw new AcmeError('connection', `${host} resolved to ${JSON.stringify(address)}, which is not an IP address`);
      const shown = formatIp(ip);
      const denied = inAny(ip, deny);
      if (denied >= 0) {
        throw new AcmeError('rejectedIdentifier', `validation will not connect to ${shown} (for ${host}): it is in ${denyText[denied]}, which acme.validation.denyNetworks refuses`);
      }
      if (allow !== null && inAny(ip, allow) < 0) {
        throw new AcmeError('rejectedIdentifier', `validation will not connect to ${shown} (for ${host}): it is outside acme.validation.allowNetworks (${allowText!.join(', ')})`);
      }
    },
  };
}
