-- The last entry of each audit journal (package audit, Journal: a local
-- file of entries written before they are committed) that the log holds,
-- committed with the entries, so a journal replayed after a crash appends
-- none twice.
CREATE TABLE audit_journals (
	id TEXT PRIMARY KEY,
	seq BIGINT NOT NULL
);
