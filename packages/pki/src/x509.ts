/**
 * The one place @peculiar/x509 is set up: its dependency injector needs a Reflect polyfill loaded
 * before it, and its crypto provider is process-global. Node's own WebCrypto covers every algorithm
 * we parse (ECDSA, RSA, Ed25519), so @peculiar/webcrypto is not a dependency. Every
 * other module imports `x509` from here, never from the package, so the order cannot go wrong.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
