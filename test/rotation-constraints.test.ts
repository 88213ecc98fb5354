// A rotation must not silently drop the name constraints: `intermediate import` refuses an
// intermediate that admits names the active one does not (signed without the first ceremony's
// --permit-* flags, or with wider ones), leaves the database as it was, and imports it only when
// the operator says --allow-wider-constraints. Driven with the CLI, as the README's rotation steps.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it, after } from 'node:test';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { withStore } from './helpers/data.js';
import { extension, x509TextOfFile } from './helpers/openssl.js';

describe('rotation keeps the name constraints', () => {
  const dir = tempDir();
  after(() => dir.remove());
  const f = (name: string) => dir.file(name);
  const rootDir = f('root');
  const data = f('data');
  const rootCrt = `${rootDir}/root.crt`;
  const rootEnv = { SHORTLEAF_ROOT_PASSWORD: `root-${randomBytes(12).toString('hex')}` };
  const dataEnv = { SHORTLEAF_PASSWORD: `data-${randomBytes(12).toString('hex')}` };
  const PERMIT = ['--permit-dns', '.internal.example', '--permit-uri', 'spiffe://example.org'];

  /** `intermediate csr` for NAME, then the root signs it with these flags. */
  async function ceremony(name: string, permit: string[]): Promise<string> {
    await shortleafOk(['intermediate', 'csr', '--data', data, '--name', name, '--out', f(`${name}.csr`)], {
      env: dataEnv,
    });
    await shortleafOk(
      ['root', 'sign-intermediate', '--root', rootDir, '--csr', f(`${name}.csr`), '--out', f(`${name}.crt`), ...permit],
      { env: rootEnv },
    );
    return f(`${name}.crt`);
  }
  const certified = (name: string) =>
    withStore(data, async (store) => (await store.getIssuerByName(name))?.certDer !== null);

  it('imports the first, constrained intermediate', async () => {
    await shortleafOk(['root', 'init', '--out', rootDir], { env: rootEnv });
    const crt = await ceremony('primary', PERMIT);
    await shortleafOk(['intermediate', 'import', '--data', data, '--cert', crt, '--root', rootCrt], { env: dataEnv });
    assert.match(extension(await x509TextOfFile(crt), 'X509v3 Name Constraints') ?? '', /DNS:\.internal\.example/);
  });

  it('refuses the next one signed without --permit-*, and records nothing', async () => {
    const crt = await ceremony('next', []);
    const r = await shortleaf(
      ['intermediate', 'import', '--data', data, '--name', 'next', '--cert', crt, '--root', rootCrt],
      { env: dataEnv },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[widerNameConstraints\]/);
    assert.match(
      r.stderr,
      /less constrained than the active primary: dns names are no longer limited .*uri names are no longer limited/,
    );
    assert.match(r.stderr, /--allow-wider-constraints/);
    assert.equal(await certified('next'), false, 'the refused certificate was not stored');
  });

  it('refuses one whose permitted subtree reaches outside the active one', async () => {
    const crt = await ceremony('wider', ['--permit-dns', '.example', '--permit-uri', 'spiffe://example.org']);
    const r = await shortleaf(
      ['intermediate', 'import', '--data', data, '--name', 'wider', '--cert', crt, '--root', rootCrt],
      { env: dataEnv },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[widerNameConstraints\]/);
    assert.match(r.stderr, /permits dns:\.example, which is within none of dns:\.internal\.example/);
    assert.equal(await certified('wider'), false);
  });

  it('accepts the same or narrower constraints', async () => {
    const same = await ceremony('same', PERMIT);
    const r = await shortleafOk(
      ['intermediate', 'import', '--data', data, '--name', 'same', '--cert', same, '--root', rootCrt],
      { env: dataEnv },
    );
    assert.doesNotMatch(r.stdout, /warning/);
    const narrower = await ceremony('narrower', [
      '--permit-dns',
      '.payments.internal.example',
      '--permit-uri',
      'spiffe://example.org',
    ]);
    await shortleafOk(
      ['intermediate', 'import', '--data', data, '--name', 'narrower', '--cert', narrower, '--root', rootCrt],
      { env: dataEnv },
    );
    assert.equal(await certified('narrower'), true);
  });

  it('imports a wider one when the operator says --allow-wider-constraints, and says what widened', async () => {
    const r = await shortleafOk(
      [
        'intermediate',
        'import',
        '--data',
        data,
        '--name',
        'next',
        '--cert',
        f('next.crt'),
        '--root',
        rootCrt,
        '--allow-wider-constraints',
      ],
      { env: dataEnv },
    );
    assert.match(r.stdout, /warning: next admits names primary did not/);
    assert.equal(await certified('next'), true);
  });
});
