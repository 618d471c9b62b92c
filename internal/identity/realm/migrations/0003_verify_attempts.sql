-- Wrong passwords on a registration's verification link are counted and
-- lock that link like wrong passwords at sign-in lock an account:
-- failed_attempts is the current run of failures (counted before each
-- check), locked_until ends a lock. Unused by password reset tokens.
ALTER TABLE realm_tokens ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE realm_tokens ADD COLUMN locked_until BIGINT;
