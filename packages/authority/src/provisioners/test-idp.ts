import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';

/** A signing key of a test token issuer, with its public JWK as the issuer would publish it. */
export interface IdpKey {
  kid: string;
  alg: string;
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
}

/** A fresh key for `alg` (RS256 by default, as a cluster's service-account signer uses). */
export function idpKey(alg = 'RS256', kid: string = randomUUID()): IdpKey {
  const pair =
    alg.startsWith('RS') || alg.startsWith('PS')
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : alg === 'ES384'
        ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
        : alg === 'EdDSA'
          ? generateKeyPairSync('ed25519')
          : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    kid,
    alg,
    privateKey: pair.privateKey,
    publicJwk: { ...pair.publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg },
  };
}

/** Signs `claims` with `key`, the header naming its kid (unless `kid: null`) and `alg` (default the key's). */
export async function mintIdpToken(
  key: IdpKey,
  claims: Record<string, unknown>,
  header: { alg?: string; kid?: string | null } = {},
): Promise<string> {
  const kid = header.kid === null ? {} : { kid: header.kid ?? key.kid };
  return new SignJWT(claims)
    .setProtectedHeader({ alg: header.alg ?? key.alg, typ: 'JWT', ...kid })
    .sign(key.privateKey);
}

/**
 * The claims a kubelet's projected service-account token carries (Kubernetes 1.30:
 * `kubectl create token` / a projected volume), for `namespace`/`serviceaccount` in `pod`.
 */
export function kubeletClaims(opts: {
  issuer: string;
  audience: string;
  namespace: string;
  serviceAccount: string;
  pod: string;
  iat: number;
  lifetimeS?: number;
}): Record<string, unknown> {
  return {
    aud: [opts.audience],
    exp: opts.iat + (opts.lifetimeS ?? 3600),
    iat: opts.iat,
    iss: opts.issuer,
    jti: randomUUID(),
    'kubernetes.io': {
      namespace: opts.namespace,
      node: { name: 'node-1', uid: randomUUID() },
      pod: { name: opts.pod, uid: randomUUID() },
      serviceaccount: { name: opts.serviceAccount, uid: randomUUID() },
    },
    nbf: opts.iat,
    sub: `system:serviceaccount:${opts.namespace}:${opts.serviceAccount}`,
  };
}

/**
 * A token issuer on a loopback port: `/jwks` serves the published keys (change `keys` to rotate),
 * `/.well-known/openid-configuration` names them, `requests` counts fetches of each path.
 */
export async function startIdpServer(): Promise<{
  url: string;
  keys: IdpKey[];
  requests: Map<string, number>;
  server: Server;
  close(): Promise<void>;
}> {
  const state = { keys: [] as IdpKey[], requests: new Map<string, number>(), url: '' };
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    state.requests.set(path, (state.requests.get(path) ?? 0) + 1);
    res.setHeader('content-type', 'application/json');
    if (path === '/jwks') return res.end(JSON.stringify({ keys: state.keys.map((k) => k.publicJwk) }));
    if (path === '/.well-known/openid-configuration')
      return res.end(JSON.stringify({ issuer: state.url, jwks_uri: `${state.url}/jwks` }));
    res.statusCode = 404;
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: state.url,
    get keys() {
      return state.keys;
    },
    set keys(k: IdpKey[]) {
      state.keys = k;
    },
    requests: state.requests,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
