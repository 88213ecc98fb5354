// Issue 15: a template in the configuration file may give `emails`, checked as it loads.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'config-emails-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const load = (doc: unknown) => {
  const file = join(dir, `config-${n++}.json`);
  writeFileSync(file, JSON.stringify(doc));
  return loadConfig(file, {});
};

describe('templates with emails in the configuration', () => {
  it('loads emails with placeholders', () => {
    const c = load({ templates: { sso: { emails: ['{email}', '{preferred_username}@eng.example'] } } });
    assert.deepEqual(
      c.templates.get('sso')!.emails.map((e) => e.text),
      ['{email}', '{preferred_username}@eng.example'],
    );
  });

  it('refuses an email template whose "@" a claim would decide, naming the key', () => {
    assert.throws(
      () => load({ templates: { sso: { emails: ['{user}{domain}'] } } }),
      /templates\.sso\.emails\[0\].*exactly one literal "@"/,
    );
  });
});
