export { createAdmin, type Admin, type AdminDeps } from './admin.js';
export type { EabKeySummary } from './eab.js';
export { operatorActor, type Operator } from './operator.js';
export { recordingRevoker } from './revoke.js';
export { cliAdmin } from './cli-admin.js';
