import type { AcmeProblem } from './errors.js';
import type {
  AccountRecord,
  AuthorizationRecord,
  AuthorizationStatus,
  ChallengeRecord,
  OrderRecord,
  OrderStatus,
} from './ports.js';

/** Every URL of one ACME provisioner, from the base the client reached us at. */
export function acmeUrls(origin: string, provisioner: string) {
  const root = `${origin}/acme/${encodeURIComponent(provisioner)}`;
  return {
    root,
    directory: `${root}/directory`,
    newNonce: `${root}/new-nonce`,
    newAccount: `${root}/new-account`,
    newOrder: `${root}/new-order`,
    revokeCert: `${root}/revoke-cert`,
    keyChange: `${root}/key-change`,
    renewalInfo: `${root}/renewal-info`,
    account: (id: string) => `${root}/account/${id}`,
    orders: (id: string) => `${root}/account/${id}/orders`,
    order: (id: string) => `${root}/order/${id}`,
    finalize: (id: string) => `${root}/order/${id}/finalize`,
    authorization: (id: string) => `${root}/authz/${id}`,
    challenge: (id: string) => `${root}/chall/${id}`,
    certificate: (serial: string) => `${root}/cert/${serial}`,
  };
}

export type AcmeUrls = ReturnType<typeof acmeUrls>;

/** RFC 8555 §7.1.6: a stored pending or valid authorization past its expiry reads as expired. */
export function authorizationStatus(a: AuthorizationRecord, now: Date): AuthorizationStatus {
  if ((a.status === 'pending' || a.status === 'valid') && a.expires.getTime() <= now.getTime()) return 'expired';
  return a.status;
}

/**
 * RFC 8555 §7.1.6: an order's status before finalize follows its authorizations: invalid if it
 * expired or any authorization failed, ready once all are valid, pending otherwise.
 */
export function orderStatus(
  o: OrderRecord,
  authorizations: readonly AuthorizationRecord[],
  now: Date,
): { status: OrderStatus; error: AcmeProblem | null } {
  if (o.status !== 'pending') return { status: o.status, error: o.error };
  if (o.expires.getTime() <= now.getTime())
    return {
      status: 'invalid',
      error: {
        type: 'urn:ietf:params:acme:error:malformed',
        detail: `the order expired at ${o.expires.toISOString()}`,
        status: 400,
      },
    };
  const statuses = authorizations.map((a) => authorizationStatus(a, now));
  const failed = authorizations.find((_, i) => statuses[i] !== 'pending' && statuses[i] !== 'valid');
  if (failed !== undefined) {
    const problem = failed.challenges.find((c) => c.error !== null)?.error;
    return {
      status: 'invalid',
      error: problem ?? {
        type: 'urn:ietf:params:acme:error:unauthorized',
        detail: `the authorization for ${failed.identifier.value} is ${authorizationStatus(failed, now)}`,
        status: 403,
      },
    };
  }
  return { status: statuses.every((s) => s === 'valid') ? 'ready' : 'pending', error: null };
}

export const accountView = (a: AccountRecord, urls: AcmeUrls) => ({
  status: a.status,
  contact: a.contact,
  orders: urls.orders(a.id),
  createdAt: a.createdAt.toISOString(),
});

export function challengeView(c: ChallengeRecord, urls: AcmeUrls) {
  return {
    type: c.type,
    url: urls.challenge(c.id),
    status: c.status,
    token: c.token,
    ...(c.validated === null || c.status !== 'valid' ? {} : { validated: c.validated.toISOString() }),
    ...(c.error === null ? {} : { error: c.error }),
  };
}

export function authorizationView(a: AuthorizationRecord, urls: AcmeUrls, now: Date) {
  const status = authorizationStatus(a, now);
  // RFC 8555 §7.1.4: once valid, only the challenge that succeeded is listed.
  const challenges = status === 'valid' ? a.challenges.filter((c) => c.status === 'valid') : a.challenges;
  return {
    identifier: a.identifier,
    status,
    expires: a.expires.toISOString(),
    challenges: challenges.map((c) => challengeView(c, urls)),
    ...(a.wildcard ? { wildcard: true } : {}),
  };
}

export function orderView(o: OrderRecord, authorizations: readonly AuthorizationRecord[], urls: AcmeUrls, now: Date) {
  const { status, error } = orderStatus(o, authorizations, now);
  return {
    status,
    expires: o.expires.toISOString(),
    identifiers: o.identifiers,
    ...(o.notBefore === null ? {} : { notBefore: o.notBefore.toISOString() }),
    ...(o.notAfter === null ? {} : { notAfter: o.notAfter.toISOString() }),
    authorizations: o.authorizationIds.map(urls.authorization),
    finalize: urls.finalize(o.id),
    ...(o.certificateSerial === null ? {} : { certificate: urls.certificate(o.certificateSerial) }),
    ...(error === null ? {} : { error }),
    ...(o.replaces === null ? {} : { replaces: o.replaces }),
  };
}
