-- The Vault KV metadata of a secret's path: custom_metadata (a JSON object
-- of strings) and the settings the Vault-compatible API honours. Kept by
-- path rather than by secret so a client may write it before the secret's
-- first version, as External Secrets Operator's PushSecret does; deleting
-- the secret deletes it.
CREATE TABLE vault_kv_metadata (
	scope_key TEXT PRIMARY KEY,
	org_id BIGINT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
	project_id BIGINT REFERENCES projects(id) ON DELETE CASCADE,
	custom_metadata TEXT NOT NULL,
	max_versions INTEGER NOT NULL DEFAULT 0,
	cas_required BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX vault_kv_metadata_org ON vault_kv_metadata (org_id, project_id);
