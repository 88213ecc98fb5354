-- Lineage and blocked keys. Never edit once landed.
--
-- A renewal records the certificate it came from (renewed_from) and the lineage it belongs to:
-- the serial of the certificate that started it, issued on a real credential (a token, an ACME
-- order). lineage_started_at is when that credential was presented; renewals inherit it, so a
-- lineage has an age the authority can bound. spki_sha256 is the SHA-256 of the certificate's
-- public key (the canonical DER SubjectPublicKeyInfo), so "every certificate with this key" is one
-- indexed lookup, as is "every certificate of this lineage".
ALTER TABLE certificates ADD COLUMN renewed_from TEXT REFERENCES certificates (serial);
ALTER TABLE certificates ADD COLUMN lineage TEXT;
ALTER TABLE certificates ADD COLUMN lineage_started_at TEXT;
ALTER TABLE certificates ADD COLUMN spki_sha256 TEXT;

-- Rows issued before lineage existed start their own, at the time they were recorded: an upgrade
-- does not age out certificates that renewed before it. Their key digest is filled in from the DER
-- by the store when it opens the database (SQLite cannot parse a certificate).
UPDATE certificates SET lineage = serial, lineage_started_at = created_at WHERE lineage IS NULL;

CREATE INDEX certificates_lineage ON certificates (lineage, not_after);
CREATE INDEX certificates_spki ON certificates (spki_sha256, not_after);

-- Keys revoked for keyCompromise (Boulder's blockedKeys): refused for any later issuance or
-- renewal, whatever the front door.
CREATE TABLE blocked_keys (
  spki_sha256 TEXT PRIMARY KEY,
  reason      TEXT NOT NULL,
  serial      TEXT REFERENCES certificates (serial), -- the revocation that blocked it
  blocked_at  TEXT NOT NULL
);
