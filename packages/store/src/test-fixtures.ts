// Helpers shared by the store's tests: a temporary folder and store removed after the test, and
// an assertion on StoreError's code and message.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { StoreError, type StoreErrorCode } from './errors.js';
import { SqliteStore } from './sqlite-store.js';

/** A fresh folder, removed when the test ends. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A store on a new file (or `path`), closed when the test ends. */
export async function openStore(t: TestContext, path = join(tempDir(t), 'ca.db')): Promise<SqliteStore> {
  const store = await SqliteStore.open(path);
  t.after(() => store.close());
  return store;
}

/** For `assert.rejects`: a StoreError with this code whose message mentions `messagePart`. */
export function storeError(code: StoreErrorCode, messagePart: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof StoreError, `expected StoreError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.name, 'StoreError');
    assert.ok(err.message.includes(messagePart), `"${err.message}" should mention "${messagePart}"`);
    return true;
  };
}

export const t0 = new Date('2025-06-01T12:00:00.000Z');
export const minutes = (n: number): Date => new Date(t0.getTime() + n * 60_000);
export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
