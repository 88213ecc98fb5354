import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rootOcspSignerWarnings } from './root-ocsp-signer.js';

const DAY = 86_400_000;
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

describe('rootOcspSignerWarnings', () => {
  const signer = { notAfter: at(90 * DAY) };

  it('says nothing while the responder is outside the warning window, or when there is none', () => {
    assert.deepEqual(rootOcspSignerWarnings('primary', signer, T0, 14 * DAY), []);
    assert.deepEqual(rootOcspSignerWarnings('primary', null, T0, 14 * DAY), []);
  });

  it('warns within the window and names the three ceremony steps', () => {
    const [w] = rootOcspSignerWarnings('primary', signer, at(80 * DAY), 14 * DAY);
    assert.match(w!, /root-delegated OCSP responder of primary expires at 2030-04-01T00:00:00.000Z \(in 10 d\)/);
    assert.match(
      w!,
      /intermediate ocsp-csr --name primary`, `shortleaf root sign-ocsp` offline and `shortleaf intermediate ocsp-import`/,
    );
  });

  it('says when it has lapsed and what that breaks', () => {
    assert.match(
      rootOcspSignerWarnings('next', signer, at(91 * DAY), 14 * DAY)[0]!,
      /of next expired at .*: OCSP requests about the intermediate itself fail/,
    );
  });
});
