import type { Authority, Clock, KeySealer, Logger, Revoke } from '@shortleaf/authority';
import type { Context } from 'hono';
import type { ParsedJws } from './jws.js';
import type { AcmeOptions } from './options.js';
import type { AccountRecord, AcmeStore, AcmeTelemetry } from './ports.js';
import type { AcmeUrls } from './resources.js';
import type { ValidationRunner } from './validation-runner.js';

/** The certificate and provisioner records the ACME front door reads from the authority's store. */
export interface AcmeCertificateStore {
  getProvisioner(name: string): Promise<{ name: string; type: string; options?: string } | null>;
  getCertificate(serial: string): Promise<{
    serial: string;
    issuerId: string;
    der: Uint8Array | null;
    notBefore: Date;
    notAfter: Date;
    provisioner: string;
  } | null>;
  revocations: { get(serial: string): Promise<{ revokedAt: Date; reason: string } | null> };
}

/** Everything a handler may use; made once by `createAcmeApp`. */
export interface AcmeServices {
  store: AcmeStore;
  certificates: AcmeCertificateStore;
  authority: Pick<Authority, 'refuseNames' | 'checkLifetime' | 'issueForOrder' | 'chainFor'>;
  revoke: Revoke;
  sealer: KeySealer;
  validations: ValidationRunner;
  clock: Clock;
  random(n: number): Uint8Array;
  logger: Logger;
  orderLifetimeMs: number;
  authorizationLifetimeMs: number;
  telemetry: AcmeTelemetry;
  /** Most identifiers one order may carry (`limits.maxNames`); MAX_ORDER_IDENTIFIERS when absent. */
  maxNames?: number | undefined;
}

/** What the request pipeline leaves on the Hono context, in the order it is set. */
export interface AcmeVariables {
  provisioner: { name: string; options: AcmeOptions };
  urls: AcmeUrls;
  jws: ParsedJws;
  /** The account named by `kid`, or null for a `jwk`-signed request. */
  account: AccountRecord | null;
  /** Parsed JSON payload; null for POST-as-GET (empty payload). */
  payload: Record<string, unknown> | null;
}

export type AcmeEnv = { Variables: AcmeVariables };
export type AcmeContext = Context<AcmeEnv>;

/** Random URL-safe id for accounts, orders, authorizations, challenges and tokens. */
export const newId = (services: Pick<AcmeServices, 'random'>, bytes = 16): string =>
  Buffer.from(services.random(bytes)).toString('base64url');
