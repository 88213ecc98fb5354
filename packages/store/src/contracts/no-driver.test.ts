import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

// The contracts are what the authority and ACME import from the store; a database driver reached
// from here would load SQLite into every process that only needs the records and StoreError, and
// would tie the domain to one engine. Two checks: what the files say, and what Node loads.

const here = fileURLToPath(new URL('.', import.meta.url));
const storePackage = fileURLToPath(new URL('../../', import.meta.url));

/** The module specifiers a TypeScript file imports or re-exports (static and dynamic). */
function specifiers(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(
    /(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g,
  )) {
    found.push((m[1] ?? m[2] ?? m[3])!);
  }
  return found;
}

/** The packages loaded into a fresh Node process that imports `specifier`, as paths under node_modules. */
function loadedPackages(specifier: string): string[] {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    await import(${JSON.stringify(specifier)});
    console.log(JSON.stringify(Object.keys(require.cache)));`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: storePackage,
    encoding: 'utf8',
  });
  return (JSON.parse(out) as string[]).filter((path) => path.includes('node_modules'));
}

describe('@shortleaf/store/contracts', () => {
  it('imports nothing but its own files and Node built-ins', () => {
    const files = readdirSync(here).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    assert.ok(files.includes('index.ts') && files.includes('errors.ts'));
    for (const file of files) {
      for (const spec of specifiers(readFileSync(join(here, file), 'utf8'))) {
        assert.ok(
          /^\.\/[a-z0-9-]+\.js$/.test(spec) || spec.startsWith('node:'),
          `${file} imports ${spec}: the contracts may import only each other and node: built-ins`,
        );
      }
    }
  });

  it('is all the authority and ACME import from the store (their tests and test-*.ts support may open an engine)', () => {
    const packages = fileURLToPath(new URL('../../../', import.meta.url));
    for (const pkg of ['authority', 'acme']) {
      const src = join(packages, pkg, 'src');
      const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(
        // Test support (`test-fixtures.ts`, `test-instances.ts`, …) is imported by tests only.
        (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !/(^|\/)test-[a-z-]+\.ts$/.test(f),
      );
      assert.ok(files.length > 5, `found the ${pkg} sources`);
      for (const file of files) {
        for (const spec of specifiers(readFileSync(join(src, file), 'utf8')).filter((s) =>
          s.startsWith('@shortleaf/store'),
        )) {
          assert.equal(spec, '@shortleaf/store/contracts', `${pkg}/src/${file} imports ${spec}`);
        }
      }
    }
  });

  it('loads no database driver, where the store’s main entry does', () => {
    assert.deepEqual(
      loadedPackages('@shortleaf/store/contracts').filter((p) => p.includes('better-sqlite3')),
      [],
    );
    // The control: the same probe sees the driver when it is loaded, so the check above can fail.
    assert.ok(loadedPackages('@shortleaf/store').some((p) => p.includes('better-sqlite3')));
  });
});
