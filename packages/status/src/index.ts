export { createStatusApp, issuerPaths, type PublishedIssuer, type StatusAppOptions } from './app.js';
export { createOcspHttpHandler, type OcspHttpOptions } from './ocsp-http.js';
export { isNotModified, notModified, secondsUntil } from './http-cache.js';
