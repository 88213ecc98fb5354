// The configuration schema is written once (kind, default, doc per key): these tests hold the
// loader to what the table says, and to the file format and messages operators already know.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { CONFIG_REFERENCE, ConfigError, defaultConfig, loadConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'config-schema-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const load = (doc: unknown) => {
  const file = join(dir, `config-${n++}.json`);
  writeFileSync(file, JSON.stringify(doc));
  return loadConfig(file, {});
};

/** `{"a.b": v}` → `{a: {b: v}}`, the shape of the file. */
function nest(rows: { key: string; value: unknown }[]): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  for (const { key, value } of rows) {
    const parts = key.split('.');
    let at = doc;
    for (const p of parts.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>;
    at[parts.at(-1)!] = value;
  }
  return doc;
}

const DURATION_KEYS = CONFIG_REFERENCE.filter((r) => r.expected.startsWith('a duration')).map((r) => r.key);

describe('configuration schema', () => {
  it('loads every duration once, as milliseconds, from the file format operators write', () => {
    const c = defaultConfig();
    assert.equal(c.serverCertificateLifetime, 86_400_000);
    assert.equal(c.limits.headersTimeout, 10_000);
    assert.equal(c.crl.cacheMaxAge, 300_000);
    assert.equal(c.intermediate.warnBefore, 30 * 86_400_000);
    assert.equal(c.ocsp.httpMaxAge, 0);
    const fromFile = load({
      serverCertificateLifetime: '1h30m',
      crl: { validity: '2d', refreshAfter: '90s' },
      acme: { validation: { timeout: '45s' } },
    });
    assert.equal(fromFile.serverCertificateLifetime, 5_400_000);
    assert.equal(fromFile.crl.validity, 2 * 86_400_000);
    assert.equal(fromFile.crl.refreshAfter, 90_000);
    assert.equal(fromFile.crl.rebuildDelay, 1_000, 'a key the file leaves out keeps its default');
    assert.equal(fromFile.acme.validation.timeout, 45_000);
    assert.equal(fromFile.acme.validation.httpPort, 80);
    assert.ok(DURATION_KEYS.length >= 15, DURATION_KEYS.join(', '));
  });

  it('documents every key, and its defaults written out as a file load to the same configuration as no file', () => {
    for (const row of CONFIG_REFERENCE) assert.ok(row.doc.length > 10, `${row.key} has a doc line`);
    const written = nest(
      CONFIG_REFERENCE.filter((r) => r.default !== undefined).map((r) => ({ key: r.key, value: r.default })),
    );
    assert.deepEqual(load(written), defaultConfig());
  });

  it('names each key, with what it expects, when the file gives it a value of the wrong type', () => {
    for (const row of CONFIG_REFERENCE) {
      assert.throws(
        () => load(nest([{ key: row.key, value: 7.5 }])),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message === `configuration key "${row.key}" has the wrong type (expected ${row.expected})`,
        row.key,
      );
    }
  });

  it('keeps the messages operators know: unknown nested keys list their siblings, a lifetime names its key', () => {
    assert.throws(
      () => load({ crl: { validty: '1h' } }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message ===
          'unknown configuration key "crl.validty" (known keys: crl.validity, crl.refreshAfter, crl.rebuildDelay, crl.cacheMaxAge)',
    );
    assert.throws(
      () => load({ constructor: 1 }),
      (err: unknown) => err instanceof ConfigError && /^unknown configuration key "constructor"/.test(err.message),
    );
    assert.throws(
      () => load({ serverCertificateLifetime: 'soon' }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message === 'serverCertificateLifetime: "soon" is not a duration (use e.g. 90s, 15m, 24h, 7d)',
    );
    assert.throws(
      () => load({ limits: { requestTimeout: '5s' } }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message === 'limits.headersTimeout must not be longer than limits.requestTimeout',
    );
  });

  it('does not share arrays or maps between loads', () => {
    const a = defaultConfig();
    a.acme.validation.denyNetworks.push('192.0.2.0/24');
    a.acme.validation.hosts['x.test'] = '127.0.0.1';
    assert.ok(!defaultConfig().acme.validation.denyNetworks.includes('192.0.2.0/24'));
    assert.deepEqual(defaultConfig().acme.validation.hosts, {});
  });

  it("is what the README's Configuration table lists: every key, with the same default where the table gives one value", () => {
    const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../../README.md'), 'utf8');
    const section = readme.slice(
      readme.indexOf('## Configuration'),
      readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1),
    );
    const rows = new Map([...section.matchAll(/^\| `([^`]+)` \| ([^|]*) \|/gm)].map((m) => [m[1]!, m[2]!.trim()]));
    const shown = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v)).replace(/\s/g, '');
    for (const row of CONFIG_REFERENCE) {
      const cell = rows.get(row.key);
      assert.ok(cell !== undefined, `README's Configuration table has no row for ${row.key}`);
      const single = /^`([^`]*)`$/.exec(cell);
      // A null default is described in words (`http://<statusListen>`, system).
      if (single !== null && row.default !== undefined && row.default !== null)
        assert.equal(single[1]!.replace(/\s/g, ''), shown(row.default), `README's default for ${row.key}`);
    }
    for (const key of rows.keys())
      assert.ok(
        CONFIG_REFERENCE.some((r) => r.key === key),
        `README lists ${key}, which the schema does not have`,
      );
  });
});
