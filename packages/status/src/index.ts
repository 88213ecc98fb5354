export { CA_ISSUERS_PATH, createStatusApp, type StatusAppOptions } from './app.js';
export { notModified, secondsUntil } from './http-cache.js';
