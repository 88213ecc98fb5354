import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import { generateKeyPair } from './crypto.js';
import { createCsr, parseCsr } from './csr.js';
import { PkiError } from './errors.js';
import { decodeGeneralNames, encodeGeneralNames } from './general-names.js';

describe('decodeGeneralNames', () => {
  it("takes each name's kind from its tag", () => {
    const der = encodeGeneralNames([
      { kind: 'dns', value: 'api.example' },
      { kind: 'uri', value: 'spiffe://example.org/x' },
      { kind: 'ip', value: '10.0.0.1' },
      { kind: 'email', value: 'alice@eng.example' },
    ]);
    assert.deepEqual(decodeGeneralNames(der), [
      { kind: 'dns', value: 'api.example' },
      { kind: 'uri', value: 'spiffe://example.org/x' },
      { kind: 'ip', value: '10.0.0.1' },
      { kind: 'email', value: 'alice@eng.example' },
    ]);
    // rfc822Name is [1] IA5String: context tag 0x81, the address as written.
    assert.ok(Buffer.from(der).includes(Buffer.from([0x81, 17, ...Buffer.from('alice@eng.example')])));
  });

  it('never reclassifies a name by its text (issue 12: URI:attacker.test was read as DNS:attacker.test)', () => {
    const cases: Array<[Parameters<typeof encodeGeneralNames>[0][number], string]> = [
      [{ kind: 'uri', value: 'attacker.test' }, 'has no scheme'],
      [{ kind: 'dns', value: '10.0.0.1' }, 'looks like an IPv4 address'],
      [{ kind: 'dns', value: 'spiffe://example.org/x' }, 'is not a valid DNS name'],
      [{ kind: 'uri', value: 'spiffe://example.org/ns/payments/../admin' }, 'dot segment'],
      [{ kind: 'email', value: 'eng.example' }, 'exactly one "@"'],
      [{ kind: 'dns', value: 'alice@eng.example' }, 'is not a valid DNS name'],
    ];
    for (const [name, message] of cases) {
      assert.throws(
        () => decodeGeneralNames(encodeGeneralNames([name])),
        (err: unknown) => err instanceof PkiError && err.code === 'badName' && err.message.includes(message),
        `${name.kind}:${name.value}`,
      );
    }
  });

  it('so a CSR asking for URI:attacker.test is a bad CSR, not a request for DNS:attacker.test', () => {
    const { privateKey } = generateKeyPair('EC-P256');
    const der = createCsr(privateKey, { commonName: null }, [{ kind: 'uri', value: 'attacker.test' }]);
    assert.throws(
      () => parseCsr(der),
      (err: unknown) => err instanceof PkiError && err.code === 'badCsr' && /has no scheme/.test(err.message),
    );
  });
});
