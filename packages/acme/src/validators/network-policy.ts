import {
  embeddedIpv4,
  formatIp,
  ipInNetwork,
  parseCidr,
  parseIp,
  specialAddress,
  type SpecialAddressKind,
} from '@shortleaf/pki';

type Network = { network: Uint8Array; prefix: number };

/**
 * Networks validation never connects to unless told otherwise: IPv4 link-local (which holds the
 * cloud metadata address 169.254.169.254) and IPv6 link-local. Both are also refused whatever
 * the configuration says (see NEVER_DIALLED); the list stays the default so an operator's own
 * additions read as additions to it.
 */
export const DEFAULT_DENY_NETWORKS: readonly string[] = ['169.254.0.0/16', 'fe80::/10'];

const NEVER_DIALLED: Record<SpecialAddressKind, string> = {
  unspecified: 'an unspecified address, which reaches the CA machine itself',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
  'link-local': 'a link-local address, where cloud metadata services live',
};

/** Where validation may connect: never to a special-purpose address, never into `deny`; when `allow` is set, only into it. */
export interface NetworkPolicy {
  /** Why validation must not connect to `address` (an IP literal), or null when it may. */
  refusal(address: string): string | null;
}

function parseNetworks(list: readonly string[], key: string): Network[] {
  return list.map((text) => {
    const net = parseCidr(text);
    if (net === null)
      throw new Error(
        `acme.validation.${key}: ${JSON.stringify(text)} is not an IP network such as 10.0.0.0/8 or fd00::/8`,
      );
    return net;
  });
}

/**
 * Builds the policy from configured CIDR lists (checked eagerly: a typo fails at startup). It is
 * applied to the address about to be dialled and again to the connected socket's peer, for every
 * http-01 hop and every tls-alpn-01 connection (see dial.ts), so neither a name nor a redirect
 * can point validation elsewhere. Unspecified, multicast, broadcast and link-local addresses,
 * in any IPv4 or IPv6 spelling, are refused first: no `allowNetworks` entry lets them through.
 */
export function createNetworkPolicy(config: {
  denyNetworks?: readonly string[] | undefined;
  allowNetworks?: readonly string[] | null | undefined;
}): NetworkPolicy {
  const denyText = config.denyNetworks ?? DEFAULT_DENY_NETWORKS;
  const deny = parseNetworks(denyText, 'denyNetworks');
  const allowText = config.allowNetworks ?? null;
  const allow = allowText === null ? null : parseNetworks(allowText, 'allowNetworks');
  const inAny = (ip: Uint8Array, nets: readonly Network[]) => {
    const v4 = embeddedIpv4(ip);
    return nets.findIndex((n) => ipInNetwork(ip, n) || (v4 !== null && ipInNetwork(v4, n)));
  };
  return {
    refusal(address) {
      const ip = parseIp(address);
      if (ip === null) return `${JSON.stringify(address)} is not an IP address`;
      const shown = formatIp(ip);
      const special = specialAddress(ip);
      if (special !== null)
        return `${shown} is ${NEVER_DIALLED[special.kind]} (${special.cidr}); validation never connects to one, whatever acme.validation allows`;
      const denied = inAny(ip, deny);
      if (denied >= 0) return `${shown} is in ${denyText[denied]}, which acme.validation.denyNetworks refuses`;
      if (allow !== null && inAny(ip, allow) < 0)
        return `${shown} is outside acme.validation.allowNetworks (${allowText!.join(', ')})`;
      return null;
    },
  };
}
