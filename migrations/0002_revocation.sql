-- Revocation: what was revoked, the CRLs we published, the root CRL we were given, and the
-- root-delegated OCSP signer whose key lives here sealed. Never edit once landed.

-- One row per revoked certificate; the first revocation wins (time and reason never change).
CREATE TABLE revocations (
  serial     TEXT PRIMARY KEY REFERENCES certificates (serial),
  revoked_at TEXT NOT NULL,
  reason     TEXT NOT NULL,
  actor      TEXT NOT NULL
);

-- Every CRL an intermediate published. The primary key makes a number usable once; the builder
-- always takes the largest plus one, so numbers only grow (RFC 5280 §5.2.3).
CREATE TABLE crls (
  issuer_id   TEXT NOT NULL REFERENCES issuers (id),
  number      INTEGER NOT NULL CHECK (number >= 0),
  this_update TEXT NOT NULL,
  next_update TEXT NOT NULL,
  entries     INTEGER NOT NULL,
  der         BLOB NOT NULL,
  PRIMARY KEY (issuer_id, number)
);

-- CRLs signed offline by a root and imported; served at /root.crl.
CREATE TABLE root_crls (
  root_fingerprint TEXT NOT NULL REFERENCES roots (fingerprint),
  number           INTEGER NOT NULL CHECK (number >= 0),
  this_update      TEXT NOT NULL,
  next_update      TEXT NOT NULL,
  der              BLOB NOT NULL,
  imported_at      TEXT NOT NULL,
  PRIMARY KEY (root_fingerprint, number)
);

-- OCSP signers the root delegated at the offline ceremony, to answer for an intermediate's own
-- status. The key is generated here and sealed; the certificate arrives with the intermediate.
CREATE TABLE ocsp_signers (
  id         TEXT PRIMARY KEY,
  issuer_id  TEXT NOT NULL REFERENCES issuers (id),
  sealed_key BLOB NOT NULL,
  csr_der    BLOB NOT NULL,
  cert_der   BLOB,
  created_at TEXT NOT NULL
);
