import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AcmeError } from './errors.js';
import { MAX_ORDER_IDENTIFIERS, parseOrderIdentifiers } from './identifiers.js';

const ids = (n: number) => Array.from({ length: n }, (_, i) => ({ type: 'dns', value: `n${i}.test` }));

describe('ACME limits', () => {
  it('refuses more identifiers than limits.maxNames, naming the limit, its value and the key', () => {
    assert.equal(parseOrderIdentifiers(ids(3), 3).length, 3);
    assert.throws(
      () => parseOrderIdentifiers(ids(4), 3),
      (err: unknown) =>
        err instanceof AcmeError &&
        err.type === 'rejectedIdentifier' &&
        err.message === 'the order has 4 identifiers; the limit is 3 (limits.maxNames)',
    );
  });

  it(`defaults to ${MAX_ORDER_IDENTIFIERS} identifiers`, () => {
    assert.equal(parseOrderIdentifiers(ids(MAX_ORDER_IDENTIFIERS)).length, MAX_ORDER_IDENTIFIERS);
    assert.throws(() => parseOrderIdentifiers(ids(MAX_ORDER_IDENTIFIERS + 1)), /limit is 100 \(limits\.maxNames\)/);
  });
});
