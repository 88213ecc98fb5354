import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// A SQLite CA never loads the PostgreSQL driver: openStore imports the engine only for a URL.

const storePackage = fileURLToPath(new URL('../../', import.meta.url));

/** Whether a fresh Node process that imports `specifier` has loaded `pg`. */
function loadsPg(specifier: string): boolean {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    await import(${JSON.stringify(specifier)});
    console.log(JSON.stringify(Object.keys(require.cache)));`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: storePackage,
    encoding: 'utf8',
  });
  return (JSON.parse(out) as string[]).some((path) =>
    /node_modules\/(\.pnpm\/pg@[^/]+\/node_modules\/)?pg\//.test(path),
  );
}

it('the store’s main entry does not load pg; the PostgreSQL engine does', () => {
  assert.equal(loadsPg('@shortleaf/store'), false);
  assert.equal(loadsPg('./src/postgres/pg-store.ts'), true, 'the control: the probe sees pg when it is loaded');
});
