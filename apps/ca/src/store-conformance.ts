import type { AcmeCertificateStore, AcmeStore } from '@shortleaf/acme';
import type { AuthorityStore, RevocationStore } from '@shortleaf/authority';
import type { AcmeEngine, PostgresStore, RevocationsEngine, SqliteStore, Store } from '@shortleaf/store';

// Compile-time proof that every storage engine implements every port its users declare, as
// Boulder's `var _ sapb.StorageAuthorityServer = (*SQLStorageAuthority)(nil)` does. It lives here
// because only the composition root sees both the ports (authority, acme) and the engines (store);
// `tsc -b` fails on this file when an engine or a port drifts (a method renamed, missing, or
// returning another shape). Nothing runs: the checks are types.

/** Compiles only when `Engine` can stand wherever `Port` is asked for. */
type Implements<Port, Engine extends Port> = Engine;

export type StoreConformance = [
  // The engine-neutral store the apps are typed by, and each engine behind it.
  Implements<Store, SqliteStore>,
  Implements<RevocationsEngine, SqliteStore['revocations']>,
  Implements<AcmeEngine, SqliteStore['acme']>,
  Implements<Store, PostgresStore>,
  Implements<RevocationsEngine, PostgresStore['revocations']>,
  Implements<AcmeEngine, PostgresStore['acme']>,
  // The authority's ports.
  Implements<AuthorityStore, Store>,
  Implements<AuthorityStore, SqliteStore>,
  Implements<AuthorityStore, PostgresStore>,
  Implements<RevocationStore, RevocationsEngine>,
  // The ACME front door's ports.
  Implements<AcmeStore, AcmeEngine>,
  Implements<AcmeStore, SqliteStore['acme']>,
  Implements<AcmeStore, PostgresStore['acme']>,
  Implements<AcmeCertificateStore, Store>,
];
