import { StoreError } from '@shortleaf/store/contracts';
import type { JWK } from 'jose';
import { newId, type AcmeContext, type AcmeServices } from './context.js';
import { verifyExternalAccountBinding } from './eab.js';
import { AcmeError } from './errors.js';
import { checkHeader, importPublicJwk, parseJws, publicJwk, thumbprint, verifyJws } from './jws.js';
import { requireAccount } from './pipeline.js';
import type { AccountRecord } from './ports.js';
import { accountView } from './resources.js';

const MAX_CONTACTS = 10;
const MAILTO = /^mailto:[^\s@,;:<>()[\]\\"]+@[a-z0-9.-]+\.[a-z]{2,}$/i;

/** RFC 8555 §7.3: contacts are `mailto:` URLs, one address each, no headers. */
function parseContacts(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
    throw new AcmeError('malformed', '"contact" must be an array of URL strings');
  if (value.length > MAX_CONTACTS)
    throw new AcmeError('invalidContact', `at most ${MAX_CONTACTS} contacts are accepted`);
  for (const c of value as string[]) {
    if (!c.toLowerCase().startsWith('mailto:'))
      throw new AcmeError(
        'unsupportedContact',
        `only mailto: contacts are supported, not ${JSON.stringify(c.slice(0, 100))}`,
      );
    if (!MAILTO.test(c))
      throw new AcmeError('invalidContact', `${JSON.stringify(c.slice(0, 100))} is not a single plain email address`);
  }
  return value as string[];
}

function accountResponse(c: AcmeContext, account: AccountRecord, status: 200 | 201) {
  const urls = c.get('urls');
  c.header('Location', urls.account(account.id));
  return c.json(accountView(account, urls), status);
}

/**
 * newAccount (RFC 8555 §7.3): finds the account of this key or creates one. Creation checks the
 * terms of service and, where the provisioner requires it, an External Account Binding.
 */
export async function newAccount(c: AcmeContext, s: AcmeServices): Promise<Response> {
  const jwk = c.get('jws').header.jwk!;
  const payload = c.get('payload');
  if (payload === null) throw new AcmeError('malformed', 'newAccount needs a JSON payload');
  const { name: provisioner, options } = c.get('provisioner');
  const tp = await thumbprint(jwk);
  const existing = await s.store.getAccountByThumbprint(provisioner, tp);
  if (existing !== null) {
    // RFC 8555 §7.3.6: the key of a deactivated account is refused as its kid is, with 401.
    if (existing.status !== 'valid')
      throw new AcmeError('accountDeactivated', `the account of this key is ${existing.status}`);
    return accountResponse(c, existing, 200);
  }
  if (payload.onlyReturnExisting === true) throw new AcmeError('accountDoesNotExist', 'no account exists for this key');
  if (options.termsOfService !== null && payload.termsOfServiceAgreed !== true) {
    throw new AcmeError(
      'userActionRequired',
      `agree to the terms of service at ${options.termsOfService} ("termsOfServiceAgreed": true)`,
      { headers: { Link: `<${options.termsOfService}>;rel="terms-of-service"` } },
    );
  }
  const contact = parseContacts(payload.contact);
  let eabKid: string | null = null;
  if (payload.externalAccountBinding !== undefined) {
    eabKid = await verifyExternalAccountBinding(s, {
      binding: payload.externalAccountBinding,
      provisioner,
      newAccountUrl: c.get('urls').newAccount,
      accountJwk: jwk,
    });
  } else if (options.requireEab) {
    throw new AcmeError(
      'externalAccountRequired',
      `provisioner ${provisioner} requires an external account binding: ask the CA operator for a key id and HMAC key (shortleaf acme eab add)`,
    );
  }
  const account: AccountRecord = {
    id: newId(s),
    provisioner,
    thumbprint: tp,
    jwk: JSON.stringify(publicJwk(jwk)),
    status: 'valid',
    contact,
    eabKid,
    createdAt: s.clock.now(),
  };
  try {
    await s.store.createAccount(account, eabKid === null ? undefined : { kid: eabKid, at: account.createdAt });
  } catch (cause) {
    if (cause instanceof StoreError && cause.code === 'eabKeyUsed')
      throw new AcmeError('unauthorized', `the external account key ${eabKid} is already bound to an account`, {
        cause,
      });
    if (cause instanceof StoreError && cause.code === 'conflict') {
      // The same key registered concurrently: answer as for an existing account.
      const raced = await s.store.getAccountByThumbprint(provisioner, tp);
      if (raced !== null) return accountResponse(c, raced, 200);
    }
    throw cause;
  }
  s.logger.info('acme_account_created', { provisioner, account: account.id, eab: eabKid !== null });
  return accountResponse(c, account, 201);
}

/** POST to an account URL (RFC 8555 §7.3.2, §7.3.6): read it, change contacts, or deactivate. */
export async function updateAccount(c: AcmeContext, s: AcmeServices): Promise<Response> {
  let account = requireAccount(c);
  if (c.req.param('id') !== account.id)
    throw new AcmeError('unauthorized', 'an account can only read or change itself');
  const payload = c.get('payload');
  if (payload !== null) {
    const change: { contact?: string[]; status?: 'deactivated' } = {};
    if (payload.contact !== undefined) change.contact = parseContacts(payload.contact);
    if (payload.status !== undefined) {
      if (payload.status !== 'deactivated')
        throw new AcmeError('malformed', 'the only status a client may set is "deactivated"');
      change.status = 'deactivated';
    }
    if (change.contact !== undefined || change.status !== undefined) {
      await s.store.updateAccount(account.id, change);
      account = { ...account, ...change };
      if (change.status !== undefined) s.logger.info('acme_account_deactivated', { account: account.id });
    }
  }
  return accountResponse(c, account, 200);
}

/**
 * keyChange (RFC 8555 §7.3.5): the outer JWS is signed by the current key; its payload is an
 * inner JWS signed by the new key over `{account, oldKey}`, with the same `url` and no nonce.
 */
export async function keyChange(c: AcmeContext, s: AcmeServices): Promise<Response> {
  const account = requireAccount(c);
  const payload = c.get('payload');
  if (payload === null) throw new AcmeError('malformed', 'keyChange needs the inner JWS as its payload');
  const inner = parseJws(payload, 'the inner keyChange JWS');
  checkHeader(inner.header, { requestUrl: c.get('jws').header.url, keyMode: 'jwk' });
  if ((inner.header as { nonce?: unknown }).nonce !== undefined)
    throw new AcmeError('malformed', 'the inner keyChange JWS must not carry a nonce');
  const newJwk = inner.header.jwk!;
  const body = verifyJws(inner, importPublicJwk(newJwk, inner.header.alg));
  let change: { account?: unknown; oldKey?: unknown };
  try {
    change = JSON.parse(Buffer.from(body).toString('utf8')) as typeof change;
  } catch {
    throw new AcmeError('malformed', 'the inner keyChange payload must be {"account", "oldKey"}');
  }
  const urls = c.get('urls');
  if (change.account !== urls.account(account.id))
    throw new AcmeError('malformed', 'the inner keyChange payload names a different account');
  if (
    typeof change.oldKey !== 'object' ||
    change.oldKey === null ||
    (await thumbprint(change.oldKey as JWK)) !== account.thumbprint
  ) {
    throw new AcmeError('malformed', '"oldKey" is not the key of this account');
  }
  const newThumbprint = await thumbprint(newJwk);
  const holder = await s.store.getAccountByThumbprint(account.provisioner, newThumbprint);
  if (holder !== null)
    throw new AcmeError('conflict', 'the new key already belongs to an account', {
      headers: { Location: urls.account(holder.id) },
    });
  try {
    await s.store.changeAccountKey(account.id, JSON.stringify(publicJwk(newJwk)), newThumbprint);
  } catch (cause) {
    if (cause instanceof StoreError && cause.code === 'conflict')
      throw new AcmeError('conflict', 'the new key already belongs to an account', { cause });
    throw cause;
  }
  s.logger.info('acme_account_key_changed', { account: account.id });
  return accountResponse(c, { ...account, jwk: JSON.stringify(publicJwk(newJwk)), thumbprint: newThumbprint }, 200);
}

/** Most order URLs one list response carries. */
const ORDERS_PAGE = 1000;

/** The orders list of an account (RFC 8555 §7.1.2.1), newest first. */
export async function listOrders(c: AcmeContext, s: AcmeServices): Promise<Response> {
  const account = requireAccount(c);
  if (c.req.param('id') !== account.id) throw new AcmeError('unauthorized', 'an account can only list its own orders');
  const orders = await s.store.listOrders(account.id, ORDERS_PAGE);
  const urls = c.get('urls');
  return c.json({ orders: orders.map((o) => urls.order(o.id)) });
}
