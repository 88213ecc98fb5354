-- The to-be-signed bytes of every certificate, recorded with its reservation. Never edit once landed.
--
-- Issuance encodes the TBSCertificate once, lints what those bytes parse back to, records them
-- here in the reservation's transaction, and signs exactly them (Boulder records its linting
-- certificate before signing for the same reason): the database says what the CA meant to sign
-- even when the signature never completed. NULL for certificates reserved before this migration.
ALTER TABLE certificates ADD COLUMN tbs_der BLOB;
