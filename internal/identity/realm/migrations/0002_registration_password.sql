-- The password typed at a registration is kept with that registration's
-- verification link and given to the account only when that very link is
-- used (with that password): registering an unverified address again no
-- longer replaces the password of the pending account. NULL on the other
-- tokens (password reset) and on links mailed before this migration.
ALTER TABLE realm_tokens ADD COLUMN password_hash TEXT;
