import { connect, type LookupFunction, type Socket } from 'node:net';
import { formatIp, parseIp } from '@shortleaf/pki';
import { AcmeError } from '../errors.js';
import { errorCode } from './describe.js';
import type { ValidationContext } from './types.js';

/**
 * One connection a validator makes, as the client may be told of it. `label` names it without
 * anything the remote side chose; `identifier` is true only for the connection the client's own
 * identifier leads to, whose address and refusing rule the client may read (Boulder shows the
 * same in its validation record). A connection a redirect leads to is described by its place in
 * the chain only: the redirect's URL, its host's address and the rule that refused it come from
 * a response (a Location header, internal DNS) and go to the server log, never to the client.
 */
export interface Hop {
  label: string;
  identifier: boolean;
}

export interface Dialled {
  socket: Socket;
  /** The IP address connected to, as the socket reports its peer. */
  address: string;
}

const CONNECT_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused',
  ECONNRESET: 'the connection was reset',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  ETIMEDOUT: 'the connection timed out',
  EPIPE: 'the connection was closed while sending',
};

/** A fixed description of a transport error code; never the error's own message. */
export function describeTransport(error: unknown): string {
  const code = errorCode(error);
  return CONNECT_ERRORS[code] ?? `error ${code}`;
}

/**
 * Opens the TCP connection for one validation step to `host` (a name or an IP literal) on
 * `port`: resolves it once (hosts map, then DNS), checks the network policy against that
 * address, connects to that very address (a pinned lookup, so nothing resolves the name again
 * between the check and the connect) and, once connected, checks the socket's actual peer
 * address again before a byte is sent. The caller owns the socket; on any failure it is closed.
 */
export async function dial(host: string, port: number, ctx: ValidationContext, hop: Hop): Promise<Dialled> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  let address: string;
  try {
    address = await ctx.lookup.address(bare, ctx.deadline);
  } catch (cause) {
    if (hop.identifier || !(cause instanceof AcmeError)) throw cause;
    throw new AcmeError(cause.type, `the host name of ${hop.label} could not be resolved`, { cause });
  }
  refuseUnlessAllowed(address, bare, hop, ctx);
  const where = hop.identifier ? `${hop.label} (${address}:${port})` : hop.label;
  const pinned: LookupFunction = (_name, options, callback) => {
    const family = address.includes(':') ? 6 : 4;
    if (options.all === true)
      (callback as (err: null, addresses: Array<{ address: string; family: number }>) => void)(null, [
        { address, family },
      ]);
    else callback(null, address, family);
  };
  const socket = connect({ host: address, port, lookup: pinned });
  try {
    await ctx.deadline.race(
      new Promise<void>((resolve, reject) => {
        const failed = (error: Error) =>
          reject(
            new AcmeError('connection', `connecting to ${where} failed: ${describeTransport(error)}`, { cause: error }),
          );
        socket.once('error', failed);
        socket.once('connect', () => {
          socket.off('error', failed);
          resolve();
        });
      }),
      () => new AcmeError('connection', `connecting to ${where} did not finish within ${ctx.deadline.timeoutMs} ms`),
    );
    const peer = socket.remoteAddress ?? '';
    refuseUnlessAllowed(peer, bare, hop, ctx);
    if (!sameAddress(peer, address))
      throw new AcmeError('connection', `the connection to ${where} reached another address`, {
        cause: new Error(`dialled ${address}, connected to ${peer}`),
      });
    return { socket, address: peer };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

function refuseUnlessAllowed(address: string, host: string, hop: Hop, ctx: ValidationContext): void {
  const reason = ctx.policy.refusal(address);
  if (reason === null) return;
  const detail = `validation will not connect to ${host}: ${reason}`;
  if (hop.identifier) throw new AcmeError('rejectedIdentifier', detail);
  throw new AcmeError(
    'rejectedIdentifier',
    `${hop.label} leads to an address validation does not connect to (see acme.validation in the CA's configuration)`,
    { cause: new Error(detail) },
  );
}

function sameAddress(a: string, b: string): boolean {
  const x = parseIp(a);
  const y = parseIp(b);
  return x !== null && y !== null && formatIp(x) === formatIp(y);
}
