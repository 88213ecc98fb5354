import { acmeContract } from './acme.js';
import { coordinationContract } from './coordination.js';
import { coreContract } from './core.js';
import type { StoreOpener } from './opener.js';
import { revocationsContract } from './revocations.js';

export type { StoreOpener } from './opener.js';

/**
 * The behaviour every storage engine must have, as tests: call it from one `*.contract.test.ts`
 * per engine with that engine's opener, so an engine cannot differ from another without a test
 * failing. What only one engine does (SQLite's file modes, WAL, backup) stays in that engine's tests.
 */
export function storeContract(engine: string, open: StoreOpener): void {
  coreContract(engine, open);
  revocationsContract(engine, open);
  acmeContract(engine, open);
  coordinationContract(engine, open);
}
