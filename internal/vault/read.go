package vault

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// Reader is who reads a secret value, and on whose behalf. Exactly one of
// a user, a pipeline run or a deployment.
type Reader struct {
	// UserID and Username: a user or service account reading for itself
	// (API, CLI, UI, Vault-compatible API).
	UserID   int64
	Username string
	// Via names the channel: api, ui, kv, pipeline, deployment.
	Via string
	// Pipeline is a pipeline job reading secrets to inject.
	Pipeline *PipelineRun
	// Deployment is a workload of a release being started.
	Deployment *DeploymentRun
	// kv reads as the Vault-compatible API does: a version whose
	// delete_version_after has passed is deleted.
	kv bool
}

// PipelineRun identifies a pipeline job asking for secrets.
type PipelineRun struct {
	Org, Project string
	Branch       string
	Env          string // the environment the job deploys to ("" when none)
	Run          string // the run's id, for the audit log
	Job          string
	TriggeredBy  string // the user the run acts for
}

// DeploymentRun identifies a release's workload asking for secrets.
type DeploymentRun struct {
	Org, Project string
	Env          string
	Release      string
	RequestedBy  string // the user who deployed the release
}

func (rd Reader) valid() error {
	n := 0
	if rd.UserID != 0 {
		n++
	}
	if rd.Pipeline != nil {
		n++
	}
	if rd.Deployment != nil {
		n++
	}
	if n != 1 {
		return errors.New("vault: a reader is exactly one of a user, a pipeline run or a deployment")
	}
	return nil
}

// who describes the reader for the audit log.
func (rd Reader) who() (reader, behalf string) {
	switch {
	case rd.Pipeline != nil:
		p := rd.Pipeline
		return "pipeline " + p.Org + "/" + p.Project + " branch " + p.Branch + " env " + p.Env + " run " + p.Run + " job " + p.Job, p.TriggeredBy
	case rd.Deployment != nil:
		d := rd.Deployment
		return "deployment " + d.Org + "/" + d.Project + " env " + d.Env + " release " + d.Release, d.RequestedBy
	}
	return "user " + rd.Username, rd.Username
}

func (rd Reader) via() string {
	switch {
	case rd.Via != "":
		return rd.Via
	case rd.Pipeline != nil:
		return "pipeline"
	case rd.Deployment != nil:
		return "deployment"
	}
	return "api"
}

// Read returns a secret's value at version (0: the current one) if a
// policy grants it to rd. Every attempt — granted, denied or failed — is
// audited with the reader, the secret and version, and on whose behalf;
// a granted read returns its value only once that entry is recorded (in
// the read-audit journal when there is one, else committed).
// Reading a deleted or destroyed version fails with NotFound and returns
// that version's metadata (no value).
func (s *Service) Read(ctx context.Context, rd Reader, ref Ref, version int) (Value, Secret, Version, error) {
	if err := rd.valid(); err != nil {
		return Value{}, Secret{}, Version{}, err
	}
	if version < 0 {
		return Value{}, Secret{}, Version{}, apperr.InvalidField("version", "version must not be negative")
	}
	if err := ValidateName(ref.Name); err != nil {
		return Value{}, Secret{}, Version{}, err
	}
	p, err := s.resolve(ctx, ref.Scope)
	if err != nil {
		return Value{}, Secret{}, Version{}, err
	}
	return s.readAt(ctx, rd, p, ref, version)
}

// readAt is Read in a scope already resolved.
func (s *Service) readAt(ctx context.Context, rd Reader, p place, ref Ref, version int) (Value, Secret, Version, error) {
	if err := rd.valid(); err != nil {
		return Value{}, Secret{}, Version{}, err
	}
	if version < 0 {
		return Value{}, Secret{}, Version{}, apperr.InvalidField("version", "version must not be negative")
	}
	// One query for the secret, the version asked for and the org's policy
	// generation, or none when the read cache holds them; the error cases (no such secret or version) take the
	// slower path that tells them apart.
	var (
		sl  sealed
		gen int64
		sec Secret
		v   Version
		err error
	)
	k := readKey{p.scopeKey(ref.Name), version}
	if e, ok := s.reads.get(k); ok {
		sec, v, sl, gen = e.sec, e.v, e.sl, e.polGen
		sec.Ref.Org, sec.Ref.Project = ref.Org, ref.Project // as this read names them
	} else {
		e := readEntry{gen: s.reads.generation(), at: time.Now()}
		sec, v, err = s.loadForRead(ctx, p, ref, version, &sl, &gen)
		if err == nil {
			e.sec, e.v, e.sl, e.polGen = sec, v, sl, gen
			s.reads.put(k, e)
		}
	}
	if apperr.Is(err, apperr.NotFound) {
		return s.readSlow(ctx, rd, p, ref, version)
	}
	if err != nil {
		return Value{}, Secret{}, Version{}, err
	}
	set, err := s.policiesAt(ctx, p.org.ID, gen)
	if err != nil {
		return Value{}, Secret{}, Version{}, err
	}
	policy, err := s.grantIn(ctx, set, p.org, ref, rd)
	if err != nil {
		return Value{}, Secret{}, Version{}, err
	}
	return s.finishRead(ctx, rd, ref, version, sec, policy, func() (Value, Version, error) { return s.openVersion(ctx, sec, s.view(rd, v), sl) })
}

// view is v as rd sees it: through the Vault-compatible API, deleted
// once the path's delete_version_after has passed.
func (s *Service) view(rd Reader, v Version) Version {
	if rd.kv {
		return v.kvView(s.now())
	}
	return v
}

// readSlow is readAt one lookup at a time: the secret, then the policy,
// then the version.
func (s *Service) readSlow(ctx context.Context, rd Reader, p place, ref Ref, version int) (Value, Secret, Version, error) {
	sec, err := s.loadSecret(ctx, s.db, p, ref)
	if err != nil {
		return Value{}, Secret{}, Version{}, err
	}
	policy, err := s.grant(ctx, p.org, ref, rd)
	if err != nil {
		return Value{}, Secret{}, Version{}, err
	}
	return s.finishRead(ctx, rd, ref, version, sec, policy, func() (Value, Version, error) {
		v, sl, err := s.loadVersion(ctx, sec, version)
		if err != nil {
			return Value{}, Version{}, err
		}
		return s.openVersion(ctx, sec, s.view(rd, v), sl)
	})
}

const selectForRead = "SELECT " + secretColumns + `,
	v.version, v.format, v.created_at, v.created_by, v.reason, v.deleted_at, v.destroyed, v.leaked_at, v.kek_version,
	v.kv_delete_at, v.ciphertext, v.wrapped_dek,
	COALESCE((SELECT g.generation FROM vault_policy_generation g WHERE g.org_id = s.org_id), 0),
	COALESCE((SELECT m.custom_metadata FROM vault_kv_metadata m WHERE m.scope_key = s.scope_key), '')
	FROM vault_secrets s JOIN vault_versions v ON v.secret_id = s.id
	WHERE s.scope_key = ? AND v.version = CASE WHEN CAST(? AS INTEGER) = 0 THEN s.current_version ELSE CAST(? AS INTEGER) END`

// loadForRead loads a secret with one of its versions (0: the current one)
// and its org's policy generation (and the path's KV custom metadata, for
// the Vault-compatible API). NotFound when either is missing.
func (s *Service) loadForRead(ctx context.Context, p place, ref Ref, version int, sl *sealed, gen *int64) (Secret, Version, error) {
	var (
		v      Version
		custom string
	)
	// One row by primary key: nothing to interrupt, and a context that
	// cannot end spares the driver a watcher goroutine per query.
	sec, err := scanSecret(s.db.QueryRow(context.WithoutCancel(ctx), selectForRead, p.scopeKey(ref.Name), version, version), ref.Scope,
		&v.Version, &v.Format, store.TimeDest(&v.CreatedAt), &v.CreatedBy, &v.Reason, store.TimeDest(&v.DeletedAt),
		&v.Destroyed, store.TimeDest(&v.LeakedAt), &v.KEKVersion, store.TimeDest(&v.KVDeleteAt), &sl.ciphertext, &sl.wrapped, gen, &custom)
	sl.kekVersion, sec.kvCustom = v.KEKVersion, custom
	return sec, v, err
}

// finishRead audits a read of sec that policy grants ("" when none does)
// and returns the value open yields when granted.
func (s *Service) finishRead(ctx context.Context, rd Reader, ref Ref, version int, sec Secret, policy string,
	open func() (Value, Version, error)) (Value, Secret, Version, error) {
	who, behalf := rd.who()
	details := map[string]any{"reader": who, "on_behalf_of": behalf, "via": rd.via(), "version": version}
	rec := audit.Record{Action: "vault.secret.read", OrgID: sec.orgID, Target: secretTarget(sec), Details: details}
	if policy == "" {
		rec.Outcome = audit.Denied
		details["reason"] = "no policy grants it"
		if err := s.appendAudit(ctx, rec); err != nil {
			return Value{}, Secret{}, Version{}, err
		}
		return Value{}, Secret{}, Version{}, apperr.E(apperr.Forbidden, "no vault policy lets %s read %s", who, ref)
	}
	details["policy"] = policy
	val, v, err := open()
	if v.Version != 0 {
		details["version"] = v.Version
	}
	if err != nil {
		rec.Outcome = audit.Failure
		details["reason"] = apperr.Message(err)
		if aerr := s.appendAudit(ctx, rec); aerr != nil {
			return Value{}, Secret{}, Version{}, errors.Join(err, aerr)
		}
		if v.Version != 0 && !v.Readable() {
			// A deleted or destroyed version: its metadata (never a value)
			// goes with the NotFound, as Vault's KV read answers with it.
			return Value{}, sec, v, err
		}
		return Value{}, Secret{}, Version{}, err
	}
	if err := s.appendAudit(ctx, rec); err != nil {
		return Value{}, Secret{}, Version{}, err
	}
	return val, sec, v, nil
}

// appendAudit appends an audit entry through the group committer.
func (s *Service) appendAudit(ctx context.Context, rec audit.Record) error {
	if s.journal != nil && rec.Action == "vault.secret.read" {
		return s.journal.Append(ctx, rec)
	}
	return s.commit.appendAudit(ctx, rec)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
