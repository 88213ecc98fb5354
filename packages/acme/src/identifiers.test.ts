// Names over ACME keep their kind: a `dns` identifier that looks like an IPv4 address is refused
// at newOrder, and a CSR's names are matched to the order as (kind, value) pairs at finalize.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createCsr, generateKeyPair, type SubjectName } from '@shortleaf/pki';
import { AcmeError } from './errors.js';
import { checkCsrMatchesOrder, parseOrderIdentifiers } from './identifiers.js';
import { createAcmeHarness, expectProblem, type AcmeHarness, type OrderBody } from './test-fixtures.js';

/** A CSR whose SAN holds exactly these names, of exactly these kinds, with no subject CN. */
const csrWith = (names: SubjectName[]): Uint8Array =>
  createCsr(generateKeyPair('EC-P256').privateKey, { commonName: null }, names);

describe('parseOrderIdentifiers', () => {
  it('refuses dns identifiers that look like IPv4 addresses with rejectedIdentifier, one subproblem each', () => {
    const values = ['10.20.1.1.', '010.20.1.1', '0x0a.1.1.1', '10.1', '10.20.1.1'];
    assert.throws(
      () => parseOrderIdentifiers(values.map((value) => ({ type: 'dns', value }))),
      (err: unknown) => {
        assert.ok(err instanceof AcmeError);
        assert.equal(err.type, 'rejectedIdentifier');
        const subproblems = err.toProblem().subproblems ?? [];
        assert.deepEqual(
          subproblems.map((s) => s.identifier),
          values.map((value) => ({ type: 'dns', value })),
        );
        for (const s of subproblems) {
          assert.equal(s.type, 'urn:ietf:params:acme:error:rejectedIdentifier');
          assert.match(s.detail, /looks like an IPv4 address/);
        }
        return true;
      },
    );
  });

  it('keeps an ip identifier that is no address malformed, and accepts real ones of each type', () => {
    assert.throws(
      () => parseOrderIdentifiers([{ type: 'ip', value: '010.20.1.1' }]),
      (err: unknown) => err instanceof AcmeError && err.type === 'malformed',
    );
    assert.deepEqual(
      parseOrderIdentifiers([
        { type: 'dns', value: 'A.Example' },
        { type: 'ip', value: '10.20.1.1' },
      ]),
      [
        { type: 'dns', value: 'a.example' },
        { type: 'ip', value: '10.20.1.1' },
      ],
    );
  });
});

describe('checkCsrMatchesOrder', () => {
  it('compares kinds as well as values', () => {
    const order = [{ type: 'dns' as const, value: 'attacker.test' }];
    checkCsrMatchesOrder({ commonName: null, requestedNames: [{ kind: 'dns', value: 'attacker.test' }] }, order);
    assert.throws(
      () =>
        checkCsrMatchesOrder({ commonName: null, requestedNames: [{ kind: 'uri', value: 'attacker.test' }] }, order),
      (err: unknown) => err instanceof AcmeError && err.type === 'badCSR' && err.message.includes('uri:attacker.test'),
    );
  });
});

describe('finalize with a CSR whose names are of another kind than the order', () => {
  let h: AcmeHarness;
  before(async () => {
    h = await createAcmeHarness();
  });
  after(() => h.close());

  it('refuses URI:svc1.test for an order for DNS:svc1.test with badCSR, leaving the order ready', async () => {
    const client = await h.account();
    const { url, order } = await client.readyOrder(['svc1.test']);
    expectProblem(
      await client.finalize(order, csrWith([{ kind: 'uri', value: 'svc1.test' }])),
      400,
      'badCSR',
      'svc1.test',
    );
    assert.equal((await client.get<OrderBody>(url)).body.status, 'ready');
  });

  it('refuses DNS:127.0.0.1 for an order for IP:127.0.0.1 with badCSR', async () => {
    const client = await h.account();
    const { url, order } = await client.readyOrder(['127.0.0.1']);
    expectProblem(
      await client.finalize(order, csrWith([{ kind: 'dns', value: '127.0.0.1' }])),
      400,
      'badCSR',
      'looks like an IPv4 address',
    );
    assert.equal((await client.get<OrderBody>(url)).body.status, 'ready');
    const done = await client.finalize(order, csrWith([{ kind: 'ip', value: '127.0.0.1' }]));
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.status, 'valid');
  });

  it('refuses IP-looking dns identifiers at newOrder', async () => {
    const client = await h.account();
    const problem = expectProblem(
      await client.newOrder([{ type: 'dns', value: '010.20.1.1' }]),
      400,
      'rejectedIdentifier',
      'looks like an IPv4 address',
    );
    assert.deepEqual(
      problem.subproblems?.map((s) => s.identifier),
      [{ type: 'dns', value: '010.20.1.1' }],
    );
  });
});
