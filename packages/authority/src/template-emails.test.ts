// Email addresses in templates (issue 15): each placeholder's value must fit its place in the
// address, and the rendered address then meets the provisioner's email rules like any other name.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { nameToString, parseCertificate } from '@shortleaf/pki';
import { createAuthority, type Authority } from './authority.js';
import { AuthorityError } from './errors.js';
import { parsePolicy } from './policy.js';
import { assertTemplatesFitProvisioners, parseTemplate, parseTemplates, renderTemplateUris } from './template.js';
import {
  AUD,
  T0,
  URLS,
  addProvisioner,
  createTestCa,
  makeCsr,
  mint,
  rejectsWith,
  unchanged,
  type TestCa,
  type TestProvisioner,
} from './test-fixtures.js';

function throwsCode(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AuthorityError, `expected AuthorityError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
}

const parse = (doc: unknown) => parseTemplate(doc, 'templates.people');
const render = (emails: string[], claims: Record<string, string>) =>
  renderTemplateUris(parse({ emails }), claims).map(nameToString);

describe('emails in a template document', () => {
  it('accepts a whole-address placeholder and placeholders on either side of one literal "@"', () => {
    const t = parse({ emails: ['{email}', '{preferred_username}@eng.example', 'ci+{repo}@{team}.example'] });
    assert.deepEqual(
      t.emails.map((e) => e.text),
      ['{email}', '{preferred_username}@eng.example', 'ci+{repo}@{team}.example'],
    );
  });

  it('refuses templates that leave where "@" falls to a claim value, or are no address at all', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['{user}{domain}', /exactly one literal "@"/],
      ['{a}@{b}@eng.example', /exactly one literal "@"/],
      ['{user}.eng.example', /exactly one literal "@"/],
      ['{user}@', /not a DNS name/],
      ['{user}@*.eng.example', /wildcard/],
      ['"{user}"@eng.example', /no quotes/],
      ['{user}..x@eng.example', /dot-separated/],
      [7, /must be a string/],
    ];
    for (const [text, message] of cases) throwsCode(() => parse({ emails: [text] }), 'badTemplate', message);
    throwsCode(() => parse({ emails: '{email}' }), 'badTemplate', /"templates\.people\.emails" must be a list/);
  });
});

describe('rendering emails from claims', () => {
  it('fills each place', () => {
    assert.deepEqual(
      render(['{email}', '{preferred_username}@eng.example', 'x@{team}.Example'], {
        email: 'Alice@Eng.Example',
        preferred_username: 'alice.smith',
        team: 'ops',
      }),
      ['email:Alice@eng.example', 'email:alice.smith@eng.example', 'email:x@ops.example'],
    );
  });

  it('refuses a whole-address value that is not exactly one address', () => {
    for (const email of [
      'a@b.com@evil.example',
      'alice',
      'alice@',
      '"a b"@eng.example',
      'alice@eng.example.',
      'a@[10.0.0.1]',
    ])
      throwsCode(
        () => render(['{email}'], { email }),
        'templateClaimInvalid',
        /the token claim "email" cannot go into templates\.people\.emails\[0\]: it must be one email address/,
      );
  });

  it('refuses a local-part value that could move the address (a second "@") or is not one dot-atom', () => {
    for (const preferred_username of [
      'a@b.com@evil',
      'alice@evil.example',
      'a b',
      '"a"',
      'a..b',
      '.a',
      `${'a'.repeat(65)}`,
      '',
    ])
      throwsCode(
        () => render(['{preferred_username}@eng.example'], { preferred_username }),
        'templateClaimInvalid',
        /cannot go into templates\.people\.emails\[0\]: it must be one local part/,
      );
  });

  it('refuses a domain value that is more than one DNS label', () => {
    for (const team of ['evil.example', 'a@b', '*', '-a', 'a_b', ''])
      throwsCode(
        () => render(['alice@{team}.example'], { team }),
        'templateClaimInvalid',
        /cannot go into templates\.people\.emails\[0\]: it must be one DNS label/,
      );
  });
});

describe('email policy rules', () => {
  it('stores names.email like the other allow lists and checks its patterns', () => {
    assert.deepEqual(parsePolicy({ names: { email: ['*@eng.example', 'ops@example.com'] } }).names.email, [
      '*@eng.example',
      'ops@example.com',
    ]);
    assert.throws(() => parsePolicy({ names: { email: ['*.eng.example'] } }), /email pattern/);
    assert.throws(() => parsePolicy({ names: { email: 'x@y.example' } }), /"names\.email" must be a list of strings/);
  });
});

describe('issuance with an email template', () => {
  let ca: TestCa;
  let people: TestProvisioner;
  let authority: Authority;

  before(async () => {
    ca = await createTestCa();
    people = await addProvisioner(ca.store, 'people', {
      names: { dns: ['*.prod.example'], email: ['*@eng.example'] },
      maxLifetime: '12h',
    });
    await ca.store.addProvisioner({ name: 'acme', type: 'acme', publicJwk: null, policy: '{}', createdAt: T0 });
    authority = createAuthority({
      store: ca.store,
      issuer: ca.issuer,
      clock: ca.clock,
      random: (n) => new Uint8Array(randomBytes(n)),
      urls: URLS,
      logger: ca.logger,
      templates: parseTemplates({ people: { emails: ['{email}', '{user}@eng.example'] } }),
    });
  });
  after(() => ca.close());
  beforeEach(() => ca.clock.set(T0));

  async function sign(claims: Record<string, unknown>, csrNames: string[] = ['api.prod.example']) {
    const token = await mint(people, {
      now: ca.clock.now(),
      subject: 'api.prod.example',
      sans: ['api.prod.example'],
      claims,
    });
    return authority.sign({ csr: makeCsr(csrNames).pem, token, audiences: [AUD], requester: 'unit-test' });
  }
  const refused = (p: () => Promise<unknown>, code: string, fragment: string) =>
    unchanged(ca, () => rejectsWith(p(), code, fragment));

  it('issues the addresses the claims make, allowed by the policy, and a CSR may ask for them', async () => {
    const issued = await sign({ email: 'alice@eng.example', user: 'alice.s' }, [
      'api.prod.example',
      'alice@eng.example',
    ]);
    assert.deepEqual(parseCertificate(issued.der).names.map(nameToString), [
      'dns:api.prod.example',
      'email:alice@eng.example',
      'email:alice.s@eng.example',
    ]);
  });

  it("refuses an address the provisioner's email rules do not allow, issuing nothing", async () => {
    await refused(
      () => sign({ email: 'alice@evil.example', user: 'alice' }),
      'nameNotAllowed',
      'email address alice@evil.example is not allowed (allowed: *@eng.example)',
    );
  });

  it('refuses a claim that would move the address, issuing nothing', async () => {
    await refused(
      () => sign({ email: 'alice@eng.example', user: 'a@b.com@evil' }),
      'templateClaimInvalid',
      'the token claim "user" cannot go into templates.people.emails[1]',
    );
    await refused(
      () => sign({ email: 'a@b.com@evil', user: 'alice' }),
      'templateClaimInvalid',
      'the token claim "email" cannot go into templates.people.emails[0]',
    );
  });

  it('refuses a CSR asking for an address nobody authorised', async () => {
    await refused(
      () => sign({ email: 'alice@eng.example', user: 'alice' }, ['api.prod.example', 'bob@eng.example']),
      'csrNameNotAuthorized',
      'email:bob@eng.example',
    );
  });

  it('start-up refuses emails on an ACME provisioner and fully literal addresses the policy refuses', async () => {
    await assert.rejects(
      assertTemplatesFitProvisioners(parseTemplates({ acme: { emails: ['{email}'] } }), ca.store),
      /"templates\.acme\.emails" is not allowed: acme is an ACME provisioner/,
    );
    await assert.rejects(
      assertTemplatesFitProvisioners(parseTemplates({ people: { emails: ['ops@other.example'] } }), ca.store),
      /"templates\.people\.emails\[0\]" can never pass provisioner people's name policy: email address ops@other\.example/,
    );
    await assertTemplatesFitProvisioners(
      parseTemplates({ people: { emails: ['{email}', 'ops@eng.example'] } }),
      ca.store,
    );
  });
});
