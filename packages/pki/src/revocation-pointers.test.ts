import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readRevocationPointers } from './revocation-pointers.js';
import { lintAndSign } from './sign.js';
import { URLS, leafFor, makeIntermediate, makeRoot } from './test-fixtures.js';

describe('readRevocationPointers', () => {
  it('reads back the AIA and CRL distribution point a leaf was drafted with', () => {
    const int = makeIntermediate(makeRoot());
    const leaf = leafFor(int, ['a.example']);
    assert.deepEqual(readRevocationPointers(lintAndSign(leaf.draft, int.signer, leaf.ctx)), {
      ocsp: [URLS.ocsp],
      caIssuers: [URLS.caIssuers],
      crl: [URLS.crl],
    });
  });

  it('reads empty lists from a certificate without them', () => {
    assert.deepEqual(readRevocationPointers(makeRoot().cert.der), { ocsp: [], caIssuers: [], crl: [] });
  });
});
