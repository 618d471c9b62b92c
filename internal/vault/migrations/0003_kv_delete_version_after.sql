-- delete_version_after of a path's Vault KV metadata, in whole seconds
-- (0: never), and on each version the time it set: the version's
-- creation (or undeletion) plus that delay, from when the Vault-compatible
-- API reads the version as deleted, as Vault does. NULL: none (the path
-- had no delay when the version was written, or the version predates this
-- migration). Rampart's own reads do not honour it.
ALTER TABLE vault_kv_metadata ADD COLUMN delete_version_after BIGINT NOT NULL DEFAULT 0;
ALTER TABLE vault_versions ADD COLUMN kv_delete_at BIGINT;
