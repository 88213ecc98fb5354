import { PkiError, encodeCertificates, parseCsr, type ParsedCsr } from '@shortleaf/pki';
import { StoreError } from '@shortleaf/store/contracts';
import { newId, type AcmeContext, type AcmeServices } from './context.js';
import { AcmeError, acmeErrorFor, type AcmeProblem, type Subproblem } from './errors.js';
import {
  authorizationIdentifier,
  checkCsrMatchesOrder,
  identifierKey,
  parseOrderIdentifiers,
  toSubjectName,
} from './identifiers.js';
import { requireAccount } from './pipeline.js';
import type { AccountRecord, AuthorizationRecord, ChallengeType, OrderRecord } from './ports.js';
import { certificateForCertId, parseCertId } from './renewal-info.js';
import { orderStatus, orderView } from './resources.js';

const HOUR_MS = 3_600_000;
/** Seconds a client should wait before polling a resource that is still being worked on. */
export const POLL_RETRY_AFTER_S = 1;

/** RFC 8555 §8 with RFC 8737 and RFC 8738: which challenges an identifier is offered. */
function challengeTypes(identifier: { type: 'dns' | 'ip' }, wildcard: boolean): ChallengeType[] {
  if (wildcard) return ['dns-01'];
  if (identifier.type === 'ip') return ['http-01', 'tls-alpn-01'];
  return ['http-01', 'dns-01', 'tls-alpn-01'];
}

function optionalTime(value: unknown, field: string): Date | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(Date.parse(value)))
    throw new AcmeError('malformed', `"${field}" must be an RFC 3339 time`);
  return new Date(Date.parse(value));
}

async function orderAuthorizations(s: AcmeServices, order: OrderRecord): Promise<AuthorizationRecord[]> {
  const found = await Promise.all(order.authorizationIds.map((id) => s.store.getAuthorization(id)));
  return found.filter((a): a is AuthorizationRecord => a !== null);
}

/** An order of this account, or `notFound`: the same answer for someone else's and for none. */
async function ownOrder(s: AcmeServices, account: AccountRecord, id: string): Promise<OrderRecord> {
  const order = await s.store.getOrder(id);
  if (order === null || order.accountId !== account.id)
    throw new AcmeError('notFound', `there is no order ${id} for this account`);
  return order;
}

async function orderResponse(
  c: AcmeContext,
  s: AcmeServices,
  order: OrderRecord,
  status: 200 | 201 = 200,
): Promise<Response> {
  const now = s.clock.now();
  const authorizations = await orderAuthorizations(s, order);
  const view = orderView(order, authorizations, c.get('urls'), now);
  if (view.status === 'processing' || view.status === 'pending') c.header('Retry-After', String(POLL_RETRY_AFTER_S));
  c.header('Location', c.get('urls').order(order.id));
  return c.json(view, status);
}

async function checkRateLimit(s: AcmeServices, c: AcmeContext, account: AccountRecord): Promise<void> {
  const limit = c.get('provisioner').options.ordersPerHour;
  const now = s.clock.now();
  const count = await s.store.countOrdersSince(account.id, new Date(now.getTime() - HOUR_MS));
  if (count < limit) return;
  const recent = await s.store.listOrders(account.id, limit);
  const oldest = recent.at(-1)?.createdAt.getTime() ?? now.getTime();
  const retryAfter = Math.max(1, Math.ceil((oldest + HOUR_MS - now.getTime()) / 1000));
  throw new AcmeError('rateLimited', `this account created ${count} orders in the last hour; the limit is ${limit}`, {
    headers: { 'Retry-After': String(retryAfter) },
  });
}

/** RFC 9773 §5: `replaces` names a certificate of this account that shares an identifier. */
async function checkReplaces(
  s: AcmeServices,
  account: AccountRecord,
  value: unknown,
  identifiers: readonly { type: string; value: string }[],
) {
  const id = parseCertId(value);
  const row = await certificateForCertId(s, id);
  if (row === null) throw new AcmeError('malformed', `"replaces" names ${id.text}, which this CA did not issue`);
  const order = await s.store.getOrderByCertificate(row.serial);
  if (order === null || order.accountId !== account.id)
    throw new AcmeError('unauthorized', `certificate ${id.text} was not issued to this account`);
  const before = new Set(order.identifiers.map(identifierKey));
  if (!identifiers.some((i) => before.has(`${i.type}:${i.value}`)))
    throw new AcmeError('malformed', `the order shares no identifier with the certificate it replaces (${id.text})`);
  return { text: id.text, serial: row.serial };
}

/**
 * RFC 9773 §5: only an order that is not invalid blocks another replacement. An order that
 * expired or whose authorization failed reads as invalid but is stored as pending; record that,
 * so an abandoned attempt does not block renewal for good.
 */
async function settleAbandonedReplacement(s: AcmeServices, serial: string, now: Date): Promise<void> {
  const blocking = await s.store.getOrderReplacing(serial);
  if (blocking === null || blocking.status !== 'pending') return;
  const { status, error } = orderStatus(blocking, await orderAuthorizations(s, blocking), now);
  if (
    status === 'invalid' &&
    (await s.store.transitionOrder(blocking.id, 'pending', { status: 'invalid', ...(error === null ? {} : { error }) }))
  )
    s.telemetry.orderState('invalid');
}

/**
 * newOrder (RFC 8555 §7.4): checks the identifiers against the provisioner's policy (one
 * subproblem per refused name), the account's rate limit and any `replaces`, then records the
 * order with an authorization per identifier, reusing valid ones.
 */
export async function newOrder(c: AcmeContext, s: AcmeServices): Promise<Response> {
  const account = requireAccount(c);
  const payload = c.get('payload');
  if (payload === null) throw new AcmeError('malformed', 'newOrder needs a JSON payload with "identifiers"');
  for (const key of Object.keys(payload)) {
    if (!['identifiers', 'notBefore', 'notAfter', 'replaces'].includes(key))
      throw new AcmeError('malformed', `unknown newOrder field "${key}"`);
  }
  const identifiers = parseOrderIdentifiers(payload.identifiers, s.maxNames);
  const wildcardIp = identifiers.find((i) => i.type === 'ip' && i.value.includes('*'));
  if (wildcardIp !== undefined) throw new AcmeError('rejectedIdentifier', 'IP identifiers cannot be wildcards');
  if (payload.notBefore !== undefined)
    throw new AcmeError('malformed', '"notBefore" is not supported: certificates start when they are issued');
  const notAfter = optionalTime(payload.notAfter, 'notAfter');
  const provisioner = c.get('provisioner').name;
  const refusals = await s.authority.refuseNames(provisioner, identifiers.map(toSubjectName));
  const problems: Subproblem[] = identifiers.flatMap((identifier, i) =>
    refusals[i] == null ? [] : [{ type: 'rejectedIdentifier' as const, detail: refusals[i]!, identifier }],
  );
  if (problems.length > 0) {
    throw new AcmeError(
      'rejectedIdentifier',
      problems.length === 1
        ? problems[0]!.detail
        : `provisioner ${provisioner} does not allow ${problems.length} of these identifiers; see subproblems`,
      { subproblems: problems },
    );
  }
  if (notAfter !== null) {
    try {
      await s.authority.checkLifetime(provisioner, notAfter.toISOString());
    } catch (cause) {
      // The lifetime refusals finalize sends as badCSR are a malformed newOrder field here.
      if (acmeErrorFor(cause)?.type === 'badCSR')
        throw new AcmeError('malformed', `"notAfter": ${(cause as Error).message}`, { cause });
      throw cause;
    }
  }
  await checkRateLimit(s, c, account);
  const replaces =
    payload.replaces === undefined ? null : await checkReplaces(s, account, payload.replaces, identifiers);

  const now = s.clock.now();
  const expires = new Date(now.getTime() + s.orderLifetimeMs);
  const fresh: AuthorizationRecord[] = [];
  const authorizationIds: string[] = [];
  for (const requested of identifiers) {
    const { identifier, wildcard } = authorizationIdentifier(requested);
    const reusable = await s.store.findValidAuthorization(account.id, identifier, wildcard, now);
    if (reusable !== null) {
      authorizationIds.push(reusable.id);
      continue;
    }
    const id = newId(s);
    // One token per authorization, shared by its challenges (as Boulder does).
    const token = newId(s, 32);
    fresh.push({
      id,
      accountId: account.id,
      identifier,
      wildcard,
      status: 'pending',
      expires,
      createdAt: now,
      challenges: challengeTypes(identifier, wildcard).map((type) => ({
        id: newId(s),
        authorizationId: id,
        type,
        token,
        status: 'pending',
        validated: null,
        error: null,
      })),
    });
    authorizationIds.push(id);
  }
  const order: OrderRecord = {
    id: newId(s),
    accountId: account.id,
    status: 'pending',
    identifiers,
    authorizationIds,
    notBefore: null,
    notAfter,
    expires,
    error: null,
    certificateSerial: null,
    replaces: replaces?.text ?? null,
    replacesSerial: replaces?.serial ?? null,
    createdAt: now,
  };
  if (replaces !== null) await settleAbandonedReplacement(s, replaces.serial, now);
  try {
    await s.store.createOrder(order, fresh);
  } catch (cause) {
    if (cause instanceof StoreError && cause.code === 'conflict')
      throw new AcmeError(
        'alreadyReplaced',
        `certificate ${replaces?.text} has already been replaced by another order`,
        { cause },
      );
    throw cause;
  }
  s.telemetry.orderState('pending');
  return orderResponse(c, s, order, 201);
}

/** POST-as-GET of an order. */
export async function getOrder(c: AcmeContext, s: AcmeServices): Promise<Response> {
  const account = requireAccount(c);
  return orderResponse(c, s, await ownOrder(s, account, c.req.param('id') ?? ''));
}

const SETTLE_FIRST_RETRY_MS = 1_000;
const SETTLE_MAX_RETRY_MS = 30_000;

/**
 * Moves an order whose issuance failed from `processing` to `invalid`. The failure is often the
 * database going away (a restart, a failover), and then this write fails too: left there, the
 * order would stay `processing` until it expires, the client polling it for a day. So it is tried
 * again in the background, backing off to every 30 s, until it is written or the order expires.
 */
export async function settleInvalid(
  s: Pick<AcmeServices, 'store' | 'telemetry' | 'clock' | 'logger'>,
  order: OrderRecord,
  problem: AcmeProblem,
): Promise<void> {
  let delay = SETTLE_FIRST_RETRY_MS;
  const attempt = async (): Promise<void> => {
    try {
      if (await s.store.transitionOrder(order.id, 'processing', { status: 'invalid', error: problem }))
        s.telemetry.orderState('invalid');
    } catch (err) {
      if (s.clock.now().getTime() >= order.expires.getTime()) return;
      s.logger.warn('acme_order_settle_retry', { order: order.id, error: (err as Error).message, retryInMs: delay });
      setTimeout(() => void attempt(), delay).unref();
      delay = Math.min(delay * 2, SETTLE_MAX_RETRY_MS);
    }
  };
  await attempt();
}

/**
 * finalize (RFC 8555 §7.4): only a ready order; the CSR must name exactly its identifiers. The
 * certificate is issued before the response, so the order comes back valid. A refused CSR leaves
 * the order ready for another try; a failure of ours marks it invalid.
 */
export async function finalize(c: AcmeContext, s: AcmeServices): Promise<Response> {
  const account = requireAccount(c);
  const order = await ownOrder(s, account, c.req.param('id') ?? '');
  const now = s.clock.now();
  const { status } = orderStatus(order, await orderAuthorizations(s, order), now);
  if (status !== 'ready')
    throw new AcmeError('orderNotReady', `the order is ${status}; finalize needs it ready (every authorization valid)`);
  const payload = c.get('payload');
  if (payload === null || typeof payload.csr !== 'string' || !/^[A-Za-z0-9_-]+$/.test(payload.csr))
    throw new AcmeError('malformed', 'finalize needs "csr": the base64url DER of a CSR');
  const der = new Uint8Array(Buffer.from(payload.csr, 'base64url'));
  let csr: ParsedCsr;
  try {
    csr = parseCsr(der);
  } catch (cause) {
    if (cause instanceof PkiError) throw new AcmeError('badCSR', cause.message, { cause });
    throw cause;
  }
  checkCsrMatchesOrder(csr, order.identifiers);
  if (!(await s.store.transitionOrder(order.id, 'pending', { status: 'processing' })))
    throw new AcmeError('orderNotReady', 'the order is already being finalized');
  s.telemetry.orderState('processing');
  try {
    const issued = await s.authority.issueForOrder({
      provisioner: account.provisioner,
      account: account.id,
      order: order.id,
      csr,
      names: order.identifiers.map(toSubjectName),
      ...(order.notAfter === null ? {} : { notAfter: order.notAfter.toISOString() }),
      requester: `acme:${account.id}`,
    });
    await s.store.transitionOrder(order.id, 'processing', { status: 'valid', certificateSerial: issued.serial });
    s.telemetry.orderState('valid');
    s.logger.info('acme_order_valid', { order: order.id, account: account.id, serial: issued.serial });
  } catch (cause) {
    // A refusal of the CSR the client sent (badCSR; badPublicKey for a key revoked for
    // keyCompromise) leaves the order ready for another CSR; the PKI core only sees the CSR here.
    const refusal = cause instanceof PkiError ? new AcmeError('badCSR', cause.message, { cause }) : acmeErrorFor(cause);
    if (refusal?.type === 'badCSR' || refusal?.type === 'badPublicKey') {
      await s.store.transitionOrder(order.id, 'processing', { status: 'pending' });
      throw refusal;
    }
    const problem = new AcmeError(
      'serverInternal',
      'issuance failed; the order is invalid, create a new one',
    ).toProblem();
    await settleInvalid(s, order, problem);
    throw cause;
  }
  return orderResponse(c, s, (await s.store.getOrder(order.id))!);
}

/** Certificate download (RFC 8555 §7.4.2): the leaf and its issuing chain, PEM. */
export async function certificate(c: AcmeContext, s: AcmeServices): Promise<Response> {
  const account = requireAccount(c);
  const serial = c.req.param('serial') ?? '';
  const order = /^[0-9a-f]{1,40}$/.test(serial) ? await s.store.getOrderByCertificate(serial) : null;
  if (order === null || order.accountId !== account.id)
    throw new AcmeError('notFound', `there is no certificate ${serial.slice(0, 40)} for this account`);
  const row = await s.certificates.getCertificate(serial);
  if (row === null || row.der === null) throw new AcmeError('notFound', `there is no certificate ${serial}`);
  // The chain of the intermediate that signed it, which after a rotation is not the active one.
  return c.body(encodeCertificates([row.der, ...(await s.authority.chainFor(row.issuerId))]), 200, {
    'Content-Type': 'application/pem-certificate-chain',
  });
}
