import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { AcmeError } from '../errors.js';
import type { Deadline } from './deadline.js';
import { errorCode } from './describe.js';
import type { ValidationConfig } from './types.js';

/** How the validators find where to connect and what TXT records say. */
export interface Lookup {
  /** The address to connect to for `host`: itself if an IP, else the hosts map, else DNS. */
  address(host: string, deadline: Deadline): Promise<string>;
  /** The TXT records at `name`, each record's strings joined; empty when there are none. */
  txt(name: string, deadline: Deadline): Promise<string[]>;
}

/**
 * Builds the lookup for one configuration, checking it eagerly: a hosts entry that is not an IP
 * address or a resolver Node cannot parse is a configuration mistake, reported at startup.
 */
export function createLookup(config: Pick<ValidationConfig, 'dnsResolver' | 'hosts' | 'timeoutMs'>): Lookup {
  const hosts = new Map<string, string>();
  for (const [name, ip] of Object.entries(config.hosts)) {
    if (isIP(ip) === 0)
      throw new Error(`validation hosts entry ${name} maps to ${JSON.stringify(ip)}, which is not an IP address`);
    hosts.set(name.toLowerCase().replace(/\.$/, ''), ip);
  }
  if (config.dnsResolver !== null) new dns.Resolver().setServers([config.dnsResolver]);
  const via = config.dnsResolver === null ? 'the system resolver' : `resolver ${config.dnsResolver}`;
  // c-ares retries within this; the deadline still bounds the whole attempt.
  const queryTimeoutMs = Math.max(100, Math.min(5_000, Math.floor(config.timeoutMs / 3)));

  const newResolver = () => {
    const resolver = new dns.Resolver({ timeout: queryTimeoutMs, tries: 2 });
    if (config.dnsResolver !== null) resolver.setServers([config.dnsResolver]);
    return resolver;
  };

  /** Runs one query; the codes in `empty` mean "no such records" and give an empty list. */
  const query = async <T>(
    deadline: Deadline,
    name: string,
    rrtype: string,
    run: (r: dns.Resolver) => Promise<T[]>,
    empty: string[],
  ): Promise<T[]> => {
    const resolver = newResolver();
    try {
      return await deadline.race(run(resolver), () => {
        resolver.cancel();
        return new AcmeError(
          'dns',
          `the ${rrtype} query for ${name} (${via}) did not finish within ${deadline.timeoutMs} ms`,
        );
      });
    } catch (cause) {
      if (cause instanceof AcmeError) throw cause;
      const code = errorCode(cause);
      if (empty.includes(code)) return [];
      throw new AcmeError('dns', `the ${rrtype} query for ${name} failed (${via}): ${describeDnsCode(code)}`, {
        cause,
      });
    }
  };

  return {
    async address(host, deadline) {
      const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
      if (isIP(bare) !== 0) return bare;
      const name = bare.toLowerCase().replace(/\.$/, '');
      const mapped = hosts.get(name);
      if (mapped !== undefined) return mapped;
      if (config.dnsResolver === null) return systemAddress(name, deadline);
      const v4 = await query(deadline, name, 'A', (r) => r.resolve4(name), ['ENODATA']);
      if (v4[0] !== undefined) return v4[0];
      const v6 = await query(deadline, name, 'AAAA', (r) => r.resolve6(name), ['ENODATA']);
      if (v6[0] !== undefined) return v6[0];
      throw new AcmeError('dns', `${name} has no A or AAAA record (${via})`);
    },

    async txt(name, deadline) {
      const records = await query(deadline, name, 'TXT', (r) => r.resolveTxt(name), ['ENODATA', 'ENOTFOUND']);
      return records.map((chunks) => chunks.join(''));
    },
  };
}

async function systemAddress(name: string, deadline: Deadline): Promise<string> {
  try {
    const found = await deadline.race(
      dns.lookup(name),
      () =>
        new AcmeError('dns', `looking up ${name} (the system resolver) did not finish within ${deadline.timeoutMs} ms`),
    );
    return found.address;
  } catch (cause) {
    if (cause instanceof AcmeError) throw cause;
    const code = errorCode(cause);
    if (code === 'ENOTFOUND' || code === 'ENODATA')
      throw new AcmeError('dns', `${name} does not resolve to an address (the system resolver)`, { cause });
    throw new AcmeError('dns', `looking up ${name} failed (the system resolver): ${describeDnsCode(code)}`, { cause });
  }
}

const DNS_CODES: Record<string, string> = {
  ENOTFOUND: 'the name does not exist (NXDOMAIN)',
  ESERVFAIL: 'the server answered SERVFAIL',
  EREFUSED: 'the server refused the query',
  ETIMEOUT: 'the server did not answer in time',
  ECONNREFUSED: 'the server could not be reached',
  EAI_AGAIN: 'a temporary failure in name resolution',
  EBADRESP: 'the server sent a malformed answer',
};

function describeDnsCode(code: string): string {
  return DNS_CODES[code] ?? `error ${code}`;
}
