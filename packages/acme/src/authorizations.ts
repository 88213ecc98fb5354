import type { AcmeContext, AcmeServices } from './context.js';
import { AcmeError } from './errors.js';
import { POLL_RETRY_AFTER_S } from './orders.js';
import { requireAccount } from './pipeline.js';
import type { AccountRecord, AuthorizationRecord } from './ports.js';
import { authorizationStatus, authorizationView, challengeView } from './resources.js';

const HOUR_MS = 3_600_000;

async function ownAuthorization(s: AcmeServices, account: AccountRecord, id: string): Promise<AuthorizationRecord> {
  const authz = await s.store.getAuthorization(id);
  if (authz === null || authz.accountId !== account.id)
    throw new AcmeError('notFound', `there is no authorization ${id} for this account`);
  return authz;
}

/**
 * A challenge stored as `processing` that no validation in this process is working on was left by
 * a restart; start it again rather than leave the client polling until the authorization expires.
 */
function resumeValidations(s: AcmeServices, account: AccountRecord, authz: AuthorizationRecord): void {
  for (const chall of authz.challenges) {
    if (chall.status === 'processing' && !s.validations.has(chall.id)) {
      s.validations.resume(chall, authz, `${chall.token}.${account.thumbprint}`, {
        account: account.id,
        provisioner: account.provisioner,
      });
    }
  }
}

function authorizationResponse(c: AcmeContext, s: AcmeServices, authz: AuthorizationRecord): Response {
  const view = authorizationView(authz, c.get('urls'), s.clock.now());
  if (view.status === 'pending') c.header('Retry-After', String(POLL_RETRY_AFTER_S));
  return c.json(view);
}

/** POST to an authorization (RFC 8555 §7.5, §7.5.2): read it, or deactivate it. */
export async function authorization(c: AcmeContext, s: AcmeServices): Promise<Response> {
  const account = requireAccount(c);
  let authz = await ownAuthorization(s, account, c.req.param('id') ?? '');
  resumeValidations(s, account, authz);
  const payload = c.get('payload');
  if (payload !== null && payload.status !== undefined) {
    if (payload.status !== 'deactivated')
      throw new AcmeError('malformed', 'the only status a client may set on an authorization is "deactivated"');
    const status = authorizationStatus(authz, s.clock.now());
    if (status !== 'pending' && status !== 'valid')
      throw new AcmeError('malformed', `an authorization that is ${status} cannot be deactivated`);
    await s.store.setAuthorizationStatus(authz.id, 'deactivated');
    authz = { ...authz, status: 'deactivated' };
  }
  return authorizationResponse(c, s, authz);
}

/**
 * POST to a challenge (RFC 8555 §7.5.1): `{}` asks us to validate it, POST-as-GET reads it.
 * Validation runs in the background; a repeat while it runs, or after, changes nothing.
 */
export async function challenge(c: AcmeContext, s: AcmeServices): Promise<Response> {
  const account = requireAccount(c);
  const id = c.req.param('id') ?? '';
  let chall = await s.store.getChallenge(id);
  const authz = chall === null ? null : await s.store.getAuthorization(chall.authorizationId);
  if (chall === null || authz === null || authz.accountId !== account.id)
    throw new AcmeError('notFound', `there is no challenge ${id} for this account`);
  const urls = c.get('urls');
  if (c.get('payload') !== null && chall.status === 'pending') {
    const status = authorizationStatus(authz, s.clock.now());
    if (status !== 'pending')
      throw new AcmeError('malformed', `the authorization is ${status}; this challenge can no longer be answered`);
    const limit = c.get('provisioner').options.failedValidationsPerHour;
    const failures = await s.store.countFailedValidationsSince(account.id, new Date(s.clock.now().getTime() - HOUR_MS));
    if (failures >= limit)
      throw new AcmeError(
        'rateLimited',
        `this account failed ${failures} validations in the last hour; the limit is ${limit}`,
        { headers: { 'Retry-After': '3600' } },
      );
    // Room is held from here, so concurrent requests cannot all pass the check; refused, the
    // challenge stays pending and the client may answer it again later.
    const room = s.validations.reserve({ account: account.id, provisioner: account.provisioner });
    let started = false;
    try {
      started = await s.store.startChallenge(chall.id);
    } finally {
      if (!started) room.release();
    }
    if (started) {
      room.start(chall, authz, `${chall.token}.${account.thumbprint}`);
      chall = { ...chall, status: 'processing' };
    } else {
      chall = (await s.store.getChallenge(chall.id)) ?? chall;
    }
  }
  if (chall.status === 'processing') {
    resumeValidations(s, account, { ...authz, challenges: [chall] });
    c.header('Retry-After', String(POLL_RETRY_AFTER_S));
  }
  c.header('Link', `<${urls.authorization(authz.id)}>;rel="up"`);
  return c.json(challengeView(chall, urls));
}
