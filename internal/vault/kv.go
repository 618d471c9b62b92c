package vault

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/authn"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/reqinfo"
)

// The Vault-compatible API: a subset of HashiCorp Vault's KV version 2
// HTTP API under /v1/MOUNT/ (mount "secret" by default), so existing
// clients — the official Go client, External Secrets Operator, Vault
// Agent — read and write Rampart secrets. The path below the mount is the
// secret's reference: /v1/secret/data/ORG/PROJECT/ENV/NAME. Clients send a
// Rampart token (with vault:read, and vault:write to write) in
// X-Vault-Token; browser cookies are not accepted here.
//
// Served: data (GET read, ?version=N; PUT/POST write with options.cas;
// DELETE the latest version), metadata (GET; LIST or ?list=true lists
// keys; PUT/POST/PATCH custom_metadata, max_versions, cas_required,
// delete_version_after; DELETE everything), delete, undelete and destroy
// of versions, sys/internal/ui/mounts (the CLI's KV preflight),
// auth/token/lookup-self and sys/health. Values written as
// {"value": "..."} are stored raw (what `rampart secret get` prints);
// other objects are stored as JSON. Where it differs from Vault,
// docs/vault.md says so.

// Authenticator resolves a token sent in X-Vault-Token
// (authn.Authenticator).
type Authenticator interface {
	Token(ctx context.Context, raw string) (*authn.Principal, error)
}

// KVHandler returns the handler of /v1/ with the KV engine at mount.
func (s *Service) KVHandler(auth Authenticator, mount string, maxBody int64, log *slog.Logger) http.Handler {
	if mount == "" {
		mount = "secret"
	}
	if maxBody <= 0 {
		maxBody = 1 << 20
	}
	k := &kvAPI{s: s, auth: auth, mount: strings.Trim(mount, "/"), maxBody: maxBody, log: log.With("component", "vault-kv")}
	return http.HandlerFunc(k.serve)
}

type kvAPI struct {
	s       *Service
	auth    Authenticator
	mount   string
	maxBody int64
	log     *slog.Logger
}

// kvError is an error in Vault's shape: {"errors": [...]}.
type kvError struct {
	status int
	msgs   []string
	body   any
}

func (e *kvError) Error() string { return strings.Join(e.msgs, "; ") }

var errKVPermission = &kvError{status: http.StatusForbidden, msgs: []string{"permission denied"}}

func (k *kvAPI) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	err := k.route(w, r)
	if err == nil {
		return
	}
	var ke *kvError
	if !errors.As(err, &ke) {
		ke = k.classify(r, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ke.status)
	body := ke.body
	if body == nil {
		msgs := ke.msgs
		if msgs == nil {
			msgs = []string{}
		}
		body = map[string]any{"errors": msgs}
	}
	_ = json.NewEncoder(w).Encode(body)
}

// classify maps an apperr kind to Vault's statuses.
func (k *kvAPI) classify(r *http.Request, err error) *kvError {
	switch apperr.KindOf(err) {
	case apperr.Invalid:
		return &kvError{status: http.StatusBadRequest, msgs: []string{apperr.Message(err)}}
	case apperr.TooLarge:
		return &kvError{status: http.StatusRequestEntityTooLarge, msgs: []string{apperr.Message(err)}}
	case apperr.NotFound:
		return &kvError{status: http.StatusNotFound}
	case apperr.Conflict:
		return &kvError{status: http.StatusBadRequest, msgs: []string{apperr.Message(err)}}
	case apperr.Unauthenticated, apperr.Forbidden:
		return &kvError{status: http.StatusForbidden, msgs: []string{"permission denied", apperr.Message(err)}}
	case apperr.Unavailable, apperr.TooManyRequests:
		return &kvError{status: http.StatusServiceUnavailable, msgs: []string{apperr.Message(err)}}
	}
	k.log.ErrorContext(r.Context(), "vault kv request failed", "err", err, "path", r.URL.Path)
	return &kvError{status: http.StatusInternalServerError, msgs: []string{"internal error; request id " + reqinfo.From(r.Context()).RequestID}}
}

// principal authenticates the request: X-Vault-Token, else a bearer or
// Basic token the middleware already resolved. Sessions do not count.
func (k *kvAPI) principal(r *http.Request) (*authn.Principal, error) {
	if tok := r.Header.Get("X-Vault-Token"); tok != "" {
		if len(tok) > 4096 {
			return nil, errKVPermission
		}
		p, err := k.auth.Token(r.Context(), tok)
		if err != nil || !p.Subject.Authenticated() {
			return nil, errKVPermission
		}
		return p, nil
	}
	p := authn.From(r.Context())
	if p.Token == nil || !p.Subject.Authenticated() {
		return nil, errKVPermission
	}
	return p, nil
}

func (k *kvAPI) route(w http.ResponseWriter, r *http.Request) error {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		return &kvError{status: http.StatusNotFound}
	}
	if rest == "sys/health" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return writeKV(w, http.StatusOK, map[string]any{"initialized": true, "sealed": false, "standby": false, "version": "rampart"})
	}
	p, err := k.principal(r)
	if err != nil {
		return err
	}
	ctx := authn.With(r.Context(), p)
	r = r.WithContext(ctx)
	if rest == "auth/token/lookup-self" && r.Method == http.MethodGet {
		return k.lookupSelf(w, r, p)
	}
	if m, ok := strings.CutPrefix(rest, "sys/internal/ui/mounts/"); ok && r.Method == http.MethodGet {
		if m != k.mount && !strings.HasPrefix(m, k.mount+"/") {
			return &kvError{status: http.StatusBadRequest, msgs: []string{"no mount at " + m}}
		}
		return writeKV(w, http.StatusOK, envelope(r, map[string]any{"path": k.mount + "/", "type": "kv", "options": map[string]string{"version": "2"}}))
	}
	op, path, ok := strings.Cut(strings.TrimPrefix(rest, k.mount+"/"), "/")
	if !strings.HasPrefix(rest, k.mount+"/") || !ok && op != "metadata" {
		return &kvError{status: http.StatusNotFound, msgs: []string{"no handler for route \"" + clip(rest) + "\""}}
	}
	method := r.Method
	if method == http.MethodGet && r.URL.Query().Get("list") == "true" {
		method = "LIST"
	}
	switch {
	case op == "data" && method == http.MethodGet:
		return k.read(w, r, p, path)
	case op == "data" && (method == http.MethodPut || method == http.MethodPost):
		return k.write(w, r, p, path)
	case op == "data" && method == http.MethodDelete:
		return k.deleteLatest(w, r, p, path)
	case op == "metadata" && method == "LIST":
		return k.list(w, r, p, path)
	case op == "metadata" && method == http.MethodGet:
		return k.metadata(w, r, p, path)
	case op == "metadata" && method == http.MethodDelete:
		return k.deleteAll(w, r, p, path)
	case op == "metadata" && (method == http.MethodPut || method == http.MethodPost || method == http.MethodPatch):
		return k.writeMetadata(w, r, p, path)
	case (op == "delete" || op == "undelete" || op == "destroy") && (method == http.MethodPut || method == http.MethodPost):
		return k.versions(w, r, p, op, path)
	}
	return &kvError{status: http.StatusMethodNotAllowed, msgs: []string{"unsupported operation"}}
}

// check authorises action on the secret at path and returns its ref.
func (k *kvAPI) check(ctx context.Context, p *authn.Principal, path string, a authz.Action) (Ref, error) {
	ref, _, err := k.checkAt(ctx, p, path, a)
	return ref, err
}

// checkAt is check that also returns the resolved scope.
func (k *kvAPI) checkAt(ctx context.Context, p *authn.Principal, path string, a authz.Action) (Ref, place, error) {
	ref, err := ParseRef(strings.Trim(path, "/"))
	if err != nil {
		return Ref{}, place{}, err
	}
	pl, err := k.authoriseAt(ctx, p, ref.Scope, a)
	return ref, pl, err
}

func (k *kvAPI) authoriseAt(ctx context.Context, p *authn.Principal, sc Scope, a authz.Action) (place, error) {
	pl, err := k.s.resolve(ctx, sc)
	if apperr.Is(err, apperr.NotFound) {
		// As Vault: a path the token may not use is "permission denied"
		// whether or not it exists, so org and project names cannot be
		// probed (an existing org the caller is not in answers the same).
		return place{}, errKVPermission
	}
	if err != nil {
		return place{}, err
	}
	res := pl.org.Resource()
	if sc.Project != "" {
		res = pl.project.Resource(pl.org)
	}
	return pl, authz.Check(p.Subject, a, res)
}

func writeKV(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// envelope wraps data in Vault's response shape. Its fields are in
// alphabetical order, as encoding/json writes a map's keys.
func envelope(r *http.Request, data any) kvEnvelope {
	return kvEnvelope{RequestID: reqinfo.From(r.Context()).RequestID, Data: data, MountType: "kv"}
}

type kvEnvelope struct {
	Auth          any    `json:"auth"`
	Data          any    `json:"data"`
	LeaseDuration int    `json:"lease_duration"`
	LeaseID       string `json:"lease_id"`
	MountType     string `json:"mount_type"`
	Renewable     bool   `json:"renewable"`
	RequestID     string `json:"request_id"`
	Warnings      any    `json:"warnings"`
	WrapInfo      any    `json:"wrap_info"`
}

func kvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// versionMeta is v's metadata in Vault's shape, with the path's custom
// metadata (nil when none). Its deletion_time is also the one
// delete_version_after set, ahead or passed.
func versionMeta(v Version, custom map[string]string) kvVersionMeta {
	m := kvVersionMeta{CreatedTime: kvTime(v.CreatedAt), DeletionTime: kvTime(v.kvDeletionTime()), Destroyed: v.Destroyed, Version: v.Version}
	if custom != nil {
		m.CustomMetadata = custom
	}
	return m
}

// kvVersionMeta is a version's metadata in Vault's shape (fields in
// alphabetical order, as for a map).
type kvVersionMeta struct {
	CreatedTime    string `json:"created_time"`
	CustomMetadata any    `json:"custom_metadata"`
	DeletionTime   string `json:"deletion_time"`
	Destroyed      bool   `json:"destroyed"`
	Version        int    `json:"version"`
}

// kvData is a value as KV data: a JSON value's object, or {"value": raw}.
func kvData(val Value, format string) (map[string]any, error) {
	if format == FormatJSON {
		var m map[string]any
		if err := json.Unmarshal(val.b, &m); err != nil {
			return nil, apperr.Wrap(err, apperr.Internal, "stored JSON value is malformed")
		}
		return m, nil
	}
	if utf8.Valid(val.b) {
		return map[string]any{"value": string(val.b)}, nil
	}
	return map[string]any{"value_base64": val.b}, nil
}

func (k *kvAPI) read(w http.ResponseWriter, r *http.Request, p *authn.Principal, path string) error {
	ctx := r.Context()
	ref, pl, err := k.checkAt(ctx, p, path, authz.VaultSecretRead)
	if err != nil {
		return err
	}
	version := 0
	if v := r.URL.Query().Get("version"); v != "" {
		if version, err = strconv.Atoi(v); err != nil || version < 0 {
			return &kvError{status: http.StatusBadRequest, msgs: []string{"version must be a non-negative number"}}
		}
	}
	val, sec, v, err := k.s.readAt(ctx, Reader{UserID: p.User.ID, Username: p.User.Username, Via: "kv", kv: true}, pl, ref, version)
	if apperr.Is(err, apperr.NotFound) && v.Version != 0 {
		// A deleted or destroyed version: Vault answers 404 with its metadata.
		custom, _ := parseCustom(sec.kvCustom)
		return &kvError{status: http.StatusNotFound, body: envelope(r, map[string]any{"data": nil, "metadata": versionMeta(v, custom)})}
	}
	if err != nil {
		return err
	}
	data, err := kvData(val, v.Format)
	if err != nil {
		return err
	}
	custom, err := parseCustom(sec.kvCustom)
	if err != nil {
		return err
	}
	return writeKV(w, http.StatusOK, envelope(r, map[string]any{"data": data, "metadata": versionMeta(v, custom)}))
}

func (k *kvAPI) decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, k.maxBody))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &kvError{status: http.StatusRequestEntityTooLarge, msgs: []string{"request body too large"}}
		}
		if errors.Is(err, io.EOF) {
			return &kvError{status: http.StatusBadRequest, msgs: []string{"no data provided"}}
		}
		return &kvError{status: http.StatusBadRequest, msgs: []string{"failed to parse JSON input"}}
	}
	return nil
}

func (k *kvAPI) write(w http.ResponseWriter, r *http.Request, p *authn.Principal, path string) error {
	ctx := r.Context()
	ref, pl, err := k.checkAt(ctx, p, path, authz.VaultSecretWrite)
	if err != nil {
		return err
	}
	meta, err := k.s.kvMetadataAt(ctx, k.s.db, pl, ref)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return err
	}
	var req struct {
		Data    map[string]json.RawMessage `json:"data"`
		Options struct {
			CAS *int `json:"cas"`
		} `json:"options"`
	}
	if err := k.decode(w, r, &req); err != nil {
		return err
	}
	if req.Data == nil {
		return &kvError{status: http.StatusBadRequest, msgs: []string{"no data provided"}}
	}
	if meta.CASRequired && req.Options.CAS == nil {
		return &kvError{status: http.StatusBadRequest, msgs: []string{"check-and-set parameter required for this call"}}
	}
	wr := Write{CAS: req.Options.CAS, Format: FormatJSON}
	var raw string
	if v, ok := req.Data["value"]; ok && len(req.Data) == 1 && json.Unmarshal(v, &raw) == nil && raw != "" {
		wr.Value, wr.Format = NewValue([]byte(raw)), FormatRaw
	} else {
		b, err := json.Marshal(req.Data)
		if err != nil {
			return &kvError{status: http.StatusBadRequest, msgs: []string{"failed to parse JSON input"}}
		}
		wr.Value = Value{b: b}
	}
	_, v, err := k.s.Set(ctx, ref, wr)
	if err != nil {
		if apperr.Is(err, apperr.Conflict) && wr.CAS != nil {
			return &kvError{status: http.StatusBadRequest, msgs: []string{"check-and-set parameter did not match the current version"}}
		}
		return err
	}
	return writeKV(w, http.StatusOK, envelope(r, versionMeta(v, meta.Custom)))
}

func (k *kvAPI) deleteLatest(w http.ResponseWriter, r *http.Request, p *authn.Principal, path string) error {
	ctx := r.Context()
	ref, pl, err := k.checkAt(ctx, p, path, authz.VaultSecretWrite)
	if err != nil {
		return err
	}
	sec, err := k.s.Metadata(ctx, ref)
	if err == nil {
		err = k.s.SetVersionsDeleted(ctx, ref, []int{sec.CurrentVersion}, true)
	}
	return k.done(w, r, pl, ref, "vault.secret.delete", map[string]any{"versions": "latest"}, err)
}

// done ends a delete, undelete or destroy: 204, also when there is no
// secret at ref — Vault's answer, as those operations are idempotent.
// Nothing changed then, and the attempt is audited as such.
func (k *kvAPI) done(w http.ResponseWriter, r *http.Request, pl place, ref Ref, action string, details map[string]any, err error) error {
	if apperr.Is(err, apperr.NotFound) {
		details["reason"] = "no such secret: nothing to do"
		details["via"] = "kv"
		err = k.s.appendAudit(r.Context(), audit.Record{Action: action, Outcome: audit.Failure, OrgID: pl.org.ID,
			Target: audit.Target{Type: "secret", Name: ref.String()}, Details: details})
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (k *kvAPI) versions(w http.ResponseWriter, r *http.Request, p *authn.Principal, op, path string) error {
	ctx := r.Context()
	ref, pl, err := k.checkAt(ctx, p, path, authz.VaultSecretWrite)
	if err != nil {
		return err
	}
	var req struct {
		Versions json.RawMessage `json:"versions"`
	}
	if err := k.decode(w, r, &req); err != nil {
		return err
	}
	versions, err := parseVersions(req.Versions)
	if err != nil {
		return err
	}
	switch op {
	case "delete":
		err = k.s.SetVersionsDeleted(ctx, ref, versions, true)
	case "undelete":
		err = k.s.SetVersionsDeleted(ctx, ref, versions, false)
	case "destroy":
		err = k.s.DestroyVersions(ctx, ref, versions)
	}
	return k.done(w, r, pl, ref, "vault.secret."+op, map[string]any{"versions": versions}, err)
}

// parseVersions reads the versions of a delete, undelete or destroy body
// the ways Vault takes them: an array of numbers, an array of strings
// (the CLI's -versions=1 sends ["1"]), one number, or a string of
// comma-separated numbers.
func parseVersions(raw json.RawMessage) ([]int, error) {
	none := &kvError{status: http.StatusBadRequest, msgs: []string{"no version number provided"}}
	bad := func(s string) error {
		return &kvError{status: http.StatusBadRequest, msgs: []string{"versions: cannot parse \"" + clip(s) + "\" as a version number"}}
	}
	atoi := func(s string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return 0, bad(s)
		}
		return n, nil
	}
	if len(raw) == 0 || string(raw) == "null" {
		return nil, none
	}
	var elems []json.RawMessage
	var str string
	switch {
	case json.Unmarshal(raw, &str) == nil:
		if strings.TrimSpace(str) == "" {
			return nil, none
		}
		for f := range strings.SplitSeq(str, ",") {
			elems = append(elems, json.RawMessage(strconv.Quote(f)))
		}
	case json.Unmarshal(raw, &elems) == nil:
	default:
		elems = []json.RawMessage{raw}
	}
	if len(elems) == 0 {
		return nil, none
	}
	if len(elems) > 1000 {
		return nil, &kvError{status: http.StatusBadRequest, msgs: []string{"name at most 1000 versions at once"}}
	}
	out := make([]int, 0, len(elems))
	for _, e := range elems {
		var (
			n   int
			err error
		)
		if json.Unmarshal(e, &str) == nil {
			n, err = atoi(str)
		} else if json.Unmarshal(e, &n) != nil {
			err = bad(string(e))
		}
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func (k *kvAPI) metadata(w http.ResponseWriter, r *http.Request, p *authn.Principal, path string) error {
	ctx := r.Context()
	ref, pl, err := k.checkAt(ctx, p, path, authz.VaultSecretList)
	if err != nil {
		return err
	}
	meta, err := k.s.kvMetadataAt(ctx, k.s.db, pl, ref)
	hasMeta := err == nil
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return err
	}
	sec, vs, err := k.s.History(ctx, ref)
	if apperr.Is(err, apperr.NotFound) && hasMeta {
		// Metadata written before any data: Vault shows it without versions.
		sec, vs, err = Secret{CreatedAt: meta.CreatedAt, UpdatedAt: meta.UpdatedAt}, nil, nil
	}
	if err != nil {
		return err
	}
	versions := map[string]any{}
	oldest := sec.CurrentVersion
	for _, v := range vs {
		versions[strconv.Itoa(v.Version)] = map[string]any{"created_time": kvTime(v.CreatedAt), "deletion_time": kvTime(v.kvDeletionTime()),
			"destroyed": v.Destroyed}
		oldest = min(oldest, v.Version)
	}
	var custom any
	if meta.Custom != nil {
		custom = meta.Custom
	}
	return writeKV(w, http.StatusOK, envelope(r, map[string]any{
		"cas_required": meta.CASRequired, "created_time": kvTime(sec.CreatedAt), "current_version": sec.CurrentVersion,
		"custom_metadata": custom, "delete_version_after": meta.DeleteVersionAfter.String(), "max_versions": meta.MaxVersions,
		"oldest_version": oldest, "updated_time": kvTime(sec.UpdatedAt), "versions": versions,
	}))
}

// writeMetadata is Vault's metadata write: PUT and POST set the fields
// given (custom_metadata whole), PATCH merges custom_metadata (a null
// value removes a key). The path need not hold a secret yet: External
// Secrets Operator writes metadata first, then data. max_versions,
// cas_required and delete_version_after are kept and honoured by this API.
func (k *kvAPI) writeMetadata(w http.ResponseWriter, r *http.Request, p *authn.Principal, path string) error {
	ctx := r.Context()
	ref, err := k.check(ctx, p, path, authz.VaultSecretWrite)
	if err != nil {
		return err
	}
	patch := r.Method == http.MethodPatch
	if ct := r.Header.Get("Content-Type"); patch && !strings.HasPrefix(strings.ToLower(ct), "application/merge-patch+json") {
		return &kvError{status: http.StatusUnsupportedMediaType, msgs: []string{"PATCH requires Content-Type of application/merge-patch+json, provided " + clip(ct)}}
	}
	var req struct {
		CustomMetadata     map[string]json.RawMessage `json:"custom_metadata"`
		MaxVersions        json.RawMessage            `json:"max_versions"`
		CASRequired        json.RawMessage            `json:"cas_required"`
		DeleteVersionAfter json.RawMessage            `json:"delete_version_after"`
	}
	if err := k.decode(w, r, &req); err != nil {
		return err
	}
	ch := KVMetadataChange{MustExist: patch}
	bad := func(field, msg string) error {
		return &kvError{status: http.StatusBadRequest, msgs: []string{field + ": " + msg}}
	}
	if req.CustomMetadata != nil {
		if len(req.CustomMetadata) > MaxCustomMetadataKeys {
			return bad("custom_metadata", fmt.Sprintf("at most %d keys", MaxCustomMetadataKeys))
		}
		if patch {
			ch.Patch = map[string]*string{}
		} else {
			ch.Custom = map[string]string{}
		}
		for key, raw := range req.CustomMetadata {
			if string(raw) == "null" {
				if !patch {
					return bad("custom_metadata", "the value of "+strconv.Quote(clip(key))+" is null")
				}
				ch.Patch[key] = nil
				continue
			}
			v, ok := scalarString(raw)
			if !ok {
				return bad("custom_metadata", "the value of "+strconv.Quote(clip(key))+" is not a string")
			}
			if patch {
				ch.Patch[key] = &v
			} else {
				ch.Custom[key] = v
			}
		}
	}
	if len(req.MaxVersions) > 0 && string(req.MaxVersions) != "null" {
		s, _ := scalarString(req.MaxVersions)
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return bad("max_versions", "not a number of versions")
		}
		ch.MaxVersions = &n
	}
	if len(req.CASRequired) > 0 && string(req.CASRequired) != "null" {
		s, _ := scalarString(req.CASRequired)
		b, err := strconv.ParseBool(s)
		if err != nil {
			return bad("cas_required", "not a boolean")
		}
		ch.CASRequired = &b
	}
	if len(req.DeleteVersionAfter) > 0 && string(req.DeleteVersionAfter) != "null" {
		d, err := parseDurationSecond(req.DeleteVersionAfter)
		if err != nil {
			return bad("delete_version_after", err.Error())
		}
		ch.DeleteVersionAfter = &d
	}
	if _, err := k.s.SetKVMetadata(ctx, ref, ch); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// maxDeleteVersionAfter bounds delete_version_after: about 100 years, far
// below time.Duration's limit.
const maxDeleteVersionAfter = 100 * 365 * 24 * time.Hour

// parseDurationSecond reads a duration as Vault's TypeDurationSecond
// does: a number of seconds (JSON number or string), a number of days
// ("2d"), or a Go duration ("30m", "3h", "1h30m"); truncated to whole
// seconds, not negative. "" is 0.
func parseDurationSecond(raw json.RawMessage) (time.Duration, error) {
	bad := errors.New(`not a duration: give a number of seconds, or a duration such as "30m", "3h", "1h30m" or "7d"`)
	var (
		s string
		n json.Number
	)
	switch {
	case json.Unmarshal(raw, &s) == nil:
	case json.Unmarshal(raw, &n) == nil:
		s = n.String()
	default:
		return 0, bad
	}
	negative, tooLong := errors.New("must not be negative"), errors.New("too long: at most 100 years")
	// n units, refused before it can overflow a time.Duration.
	units := func(n int64, unit time.Duration) (time.Duration, error) {
		switch {
		case n < 0:
			return 0, negative
		case n > int64(maxDeleteVersionAfter/unit):
			return 0, tooLong
		}
		return time.Duration(n) * unit, nil
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		return units(secs, time.Second)
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil {
			return 0, bad
		}
		return units(n, 24*time.Hour)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, bad
	}
	d = d.Truncate(time.Second)
	switch {
	case d < 0:
		return 0, negative
	case d > maxDeleteVersionAfter:
		return 0, tooLong
	}
	return d, nil
}

// scalarString is a JSON string's text, or a number's or boolean's (Vault
// converts them the same way).
func scalarString(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return strconv.FormatBool(b), true
	}
	return "", false
}

func (k *kvAPI) deleteAll(w http.ResponseWriter, r *http.Request, p *authn.Principal, path string) error {
	ctx := r.Context()
	ref, pl, err := k.checkAt(ctx, p, path, authz.VaultSecretWrite)
	if err != nil {
		return err
	}
	err = k.s.Delete(ctx, ref)
	if apperr.Is(err, apperr.NotFound) {
		// Perhaps metadata written before any data.
		err = k.s.DeleteKVMetadata(ctx, ref)
	}
	return k.done(w, r, pl, ref, "vault.secret.delete_all", map[string]any{}, err)
}

// list lists the keys under a folder: a user's orgs at the root, an org's
// secrets and projects, a project's secrets and environments, an
// environment's secrets. Folders end in "/". Paths with metadata and no
// secret yet count as secrets (and their environments as folders).
func (k *kvAPI) list(w http.ResponseWriter, r *http.Request, p *authn.Principal, path string) error {
	ctx := r.Context()
	path = strings.Trim(path, "/")
	var keys []string
	if path == "" {
		var orgs []identity.Org
		orgs, err := k.s.ids.OrgsOf(ctx, p.User.ID)
		if err != nil {
			return err
		}
		for _, o := range orgs {
			if authz.Check(p.Subject, authz.VaultSecretList, o.Resource()) == nil {
				keys = append(keys, o.Name+"/")
			}
		}
	} else {
		sc, err := ParseScope(path)
		if err != nil {
			return err
		}
		pl, err := k.authoriseAt(ctx, p, sc, authz.VaultSecretList)
		if err != nil {
			return err
		}
		secs, err := k.s.List(ctx, sc)
		if err != nil {
			return err
		}
		for _, sec := range secs {
			keys = append(keys, sec.Ref.Name)
		}
		// Paths with metadata and no secret yet are listed too, as Vault
		// lists every path that has metadata.
		names, metaEnvs, err := k.s.kvMetadataOnly(ctx, pl)
		if err != nil {
			return err
		}
		keys = append(keys, names...)
		for _, e := range metaEnvs {
			keys = append(keys, e+"/")
		}
		switch {
		case sc.Project == "":
			o, err := k.s.ids.Org(ctx, sc.Org)
			if err != nil {
				return err
			}
			ps, err := k.s.ids.Projects(ctx, o.ID)
			if err != nil {
				return err
			}
			for _, pr := range ps {
				if authz.Check(p.Subject, authz.VaultSecretList, pr.Resource(o)) == nil {
					keys = append(keys, pr.Name+"/")
				}
			}
		case sc.Env == "":
			envs, err := k.s.Environments(ctx, sc)
			if err != nil {
				return err
			}
			for _, e := range envs {
				keys = append(keys, e+"/")
			}
		}
	}
	if len(keys) == 0 {
		return &kvError{status: http.StatusNotFound}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	return writeKV(w, http.StatusOK, envelope(r, map[string]any{"keys": keys}))
}

// lookupSelf answers auth/token/lookup-self as Vault does, in the usual
// envelope: Vault Agent's token_file auto-auth reads the token back from
// data.id, and clients check ttl, renewable and policies. Rampart tokens
// are not renewable; their scopes stand for Vault's policies.
func (k *kvAPI) lookupSelf(w http.ResponseWriter, r *http.Request, p *authn.Principal) error {
	raw := rawToken(r)
	var (
		ttl, creationTTL int64
		created          time.Time
		expire           any
		scopes           = []string{}
		accessor         string
	)
	if t := p.Token; t != nil {
		created = t.CreatedAt
		if !t.ExpiresAt.IsZero() {
			ttl = max(int64(time.Until(t.ExpiresAt).Seconds()), 0)
			expire = kvTime(t.ExpiresAt)
			if !created.IsZero() {
				creationTTL = int64(t.ExpiresAt.Sub(created).Seconds())
			}
		}
		for _, sc := range t.Scopes {
			scopes = append(scopes, string(sc))
		}
		// The token's row id: stable and not the secret (Vault's accessor
		// names a token without being it).
		accessor = "rampart-token-" + strconv.FormatInt(t.ID, 10)
	} else {
		// Some other bearer (an OAuth access token): a digest names it.
		sum := sha256.Sum256([]byte(raw))
		accessor = "rampart-oauth-" + hex.EncodeToString(sum[:12])
	}
	var creation int64
	if !created.IsZero() {
		creation = created.Unix()
	}
	env := envelope(r, map[string]any{
		"accessor": accessor, "creation_time": creation, "creation_ttl": creationTTL, "display_name": "rampart-" + p.User.Username,
		"entity_id": strconv.FormatInt(p.User.ID, 10), "expire_time": expire, "explicit_max_ttl": creationTTL, "id": raw,
		"issue_time": kvTime(created), "meta": map[string]string{"username": p.User.Username}, "num_uses": 0, "orphan": true,
		"path": "auth/token/create", "policies": scopes, "renewable": false, "ttl": ttl, "type": "service",
	})
	env.MountType = "token"
	return writeKV(w, http.StatusOK, env)
}

// rawToken is the token the request authenticated with: X-Vault-Token,
// else the bearer or Basic password the middleware resolved.
func rawToken(r *http.Request) string {
	if tok := r.Header.Get("X-Vault-Token"); tok != "" {
		return strings.TrimSpace(tok)
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	if _, pw, ok := r.BasicAuth(); ok {
		return pw
	}
	return ""
}
