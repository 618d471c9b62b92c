package vault

import (
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// Wire types of the vault's REST API. None carries a value except
// RevealResponse, the answer to an explicit, audited reveal.

// SecretJSON is a secret's metadata.
type SecretJSON struct {
	Ref            string    `json:"ref"`
	Name           string    `json:"name"`
	Scope          string    `json:"scope"`
	Owner          string    `json:"owner"`
	Description    string    `json:"description,omitempty"`
	Generator      string    `json:"generator,omitempty"`
	CurrentVersion int       `json:"current_version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	RotatedAt      time.Time `json:"rotated_at,omitzero"`
	ExpiresAt      time.Time `json:"expires_at,omitzero"`
	Expired        bool      `json:"expired,omitempty"`
	LeakedAt       time.Time `json:"leaked_at,omitzero"`
}

// VersionJSON is one version of a secret.
type VersionJSON struct {
	Version    int       `json:"version"`
	Format     string    `json:"format"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by"`
	Reason     string    `json:"reason"`
	Current    bool      `json:"current,omitempty"`
	DeletedAt  time.Time `json:"deleted_at,omitzero"`
	Destroyed  bool      `json:"destroyed,omitempty"`
	LeakedAt   time.Time `json:"leaked_at,omitzero"`
	KEKVersion int       `json:"kek_version"`
}

// SetSecretRequest writes a new version. Value is the secret; it is
// never echoed.
type SetSecretRequest struct {
	Value       string     `json:"value"`
	Format      string     `json:"format,omitempty"`
	Description *string    `json:"description,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	Generator   *string    `json:"generator,omitempty"`
	CAS         *int       `json:"cas,omitempty"`
}

// WriteResponse answers a write: the metadata and the version written.
type WriteResponse struct {
	Secret  SecretJSON  `json:"secret"`
	Version VersionJSON `json:"version"`
}

// RevealRequest asks for a value (version 0 or absent: the current one).
type RevealRequest struct {
	Version int `json:"version,omitempty"`
}

// RevealResponse carries a value, after a granted and audited read.
type RevealResponse struct {
	Ref     string `json:"ref"`
	Version int    `json:"version"`
	Format  string `json:"format"`
	Value   string `json:"value"`
}

// RotateRequest rotates a secret: with a value, or with the secret's
// generator when value is absent.
type RotateRequest struct {
	Value *string `json:"value,omitempty"`
}

// RollbackRequest makes an earlier version current again.
type RollbackRequest struct {
	Version int `json:"version"`
}

// HistoryResponse lists a secret's versions, newest first.
type HistoryResponse struct {
	Secret   SecretJSON    `json:"secret"`
	Versions []VersionJSON `json:"versions"`
}

// PolicyJSON is a vault policy.
type PolicyJSON struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Secrets     []string  `json:"secrets"`
	Subjects    []string  `json:"subjects"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by"`
}

// PutPolicyRequest creates or replaces a policy.
type PutPolicyRequest struct {
	Description string   `json:"description,omitempty"`
	Secrets     []string `json:"secrets"`
	Subjects    []string `json:"subjects"`
}

// LeakJSON is a leak alert.
type LeakJSON struct {
	ID             int64     `json:"id"`
	Ref            string    `json:"ref"`
	Version        int       `json:"version"`
	Current        bool      `json:"current"`
	Source         string    `json:"source"`
	Location       string    `json:"location"`
	FoundAt        time.Time `json:"found_at"`
	RotatedVersion int       `json:"rotated_version,omitempty"`
	ResolvedAt     time.Time `json:"resolved_at,omitzero"`
}

// SettingsJSON are a project's vault settings.
type SettingsJSON struct {
	RotateOnLeak    bool `json:"rotate_on_leak"`
	RestartOnRotate bool `json:"restart_on_rotate"`
}

// SettingsRequest changes a project's vault settings.
type SettingsRequest struct {
	RotateOnLeak    *bool `json:"rotate_on_leak,omitempty"`
	RestartOnRotate *bool `json:"restart_on_rotate,omitempty"`
}

// SigningKeyJSON is a signing key's public half.
type SigningKeyJSON struct {
	Ref       string    `json:"ref"`
	Name      string    `json:"name"`
	Algorithm string    `json:"algorithm"`
	PublicKey string    `json:"public_key_pem"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// CreateKeyRequest generates a signing key in the vault.
type CreateKeyRequest struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm,omitempty"`
}

// SignRequest signs a digest (hex): a SHA-256 digest for ECDSA keys, the
// message for Ed25519 keys.
type SignRequest struct {
	Digest string `json:"digest"`
}

// SignResponse carries a signature (hex, ASN.1 DER for ECDSA).
type SignResponse struct {
	Signature string `json:"signature"`
}

// KEKJSON is the key-encryption key's status.
type KEKJSON struct {
	Kind       string           `json:"kind"`
	Current    int              `json:"current_version"`
	Pending    int64            `json:"pending_data_keys"`
	ByVersion  map[string]int64 `json:"data_keys_by_version"`
	StartedAt  time.Time        `json:"rotation_started_at,omitzero"`
	FinishedAt time.Time        `json:"rotation_finished_at,omitzero"`
}

// SecretOf converts a secret's metadata for the API.
func SecretOf(s Secret, now time.Time) SecretJSON {
	return SecretJSON{Ref: s.Ref.String(), Name: s.Ref.Name, Scope: s.Ref.Scope.String(), Owner: s.Owner, Description: s.Description,
		Generator: s.Generator, CurrentVersion: s.CurrentVersion, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		RotatedAt: s.RotatedAt, ExpiresAt: s.ExpiresAt, Expired: s.Expired(now), LeakedAt: s.LeakedAt}
}

// VersionOf converts a version for the API.
func VersionOf(v Version, current int) VersionJSON {
	return VersionJSON{Version: v.Version, Format: v.Format, CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy, Reason: v.Reason,
		Current: v.Version == current, DeletedAt: v.DeletedAt, Destroyed: v.Destroyed, LeakedAt: v.LeakedAt, KEKVersion: v.KEKVersion}
}

// Routes are the vault's API routes, for httpapi.Deps.Extra.
func (s *Service) Routes() []httpapi.Route {
	const org = httpapi.Prefix + "/orgs/{org}"
	var rs []httpapi.Route
	for _, sc := range []struct {
		prefix, where string
		on            httpapi.Target
	}{
		{org + "/secrets", "org", httpapi.OnOrg},
		{org + "/projects/{project}/secrets", "project", httpapi.OnProject},
		{org + "/projects/{project}/envs/{env}/secrets", "environment", httpapi.OnProject},
	} {
		p, on := sc.prefix, sc.on
		rs = append(rs,
			httpapi.Route{Method: "GET", Path: p, Tag: "vault", Summary: "List the " + sc.where + "'s secrets (metadata, never values)",
				Action: authz.VaultSecretList, On: on, Response: []SecretJSON{}, Handler: s.apiList},
			httpapi.Route{Method: "GET", Path: p + "/{name}", Tag: "vault", Summary: "Show a secret's metadata",
				Action: authz.VaultSecretList, On: on, Response: SecretJSON{}, Handler: s.apiGet},
			httpapi.Route{Method: "PUT", Path: p + "/{name}", Tag: "vault", Summary: "Write a new version of a secret (created at version 1)",
				Action: authz.VaultSecretWrite, On: on, Request: SetSecretRequest{}, Response: WriteResponse{}, Handler: s.apiSet},
			httpapi.Route{Method: "DELETE", Path: p + "/{name}", Tag: "vault", Summary: "Delete a secret with every version",
				Action: authz.VaultSecretWrite, On: on, Status: http.StatusNoContent, Handler: s.apiDelete},
			httpapi.Route{Method: "POST", Path: p + "/{name}/reveal", Tag: "vault", Summary: "Read a secret's value (needs a vault policy; audited)",
				Action: authz.VaultSecretRead, On: on, Request: RevealRequest{}, Response: RevealResponse{}, Handler: s.apiReveal},
			httpapi.Route{Method: "GET", Path: p + "/{name}/versions", Tag: "vault", Summary: "List a secret's versions, newest first",
				Action: authz.VaultSecretList, On: on, Response: HistoryResponse{}, Handler: s.apiHistory},
			httpapi.Route{Method: "POST", Path: p + "/{name}/rotate", Tag: "vault", Summary: "Rotate a secret (new value, or one from its generator)",
				Action: authz.VaultSecretWrite, On: on, Request: RotateRequest{}, Response: WriteResponse{}, Handler: s.apiRotate},
			httpapi.Route{Method: "POST", Path: p + "/{name}/rollback", Tag: "vault", Summary: "Make an earlier version's value current (as a new version)",
				Action: authz.VaultSecretWrite, On: on, Request: RollbackRequest{}, Response: WriteResponse{}, Handler: s.apiRollback},
		)
	}
	keys := org + "/projects/{project}/signing-keys"
	rs = append(rs,
		httpapi.Route{Method: "GET", Path: org + "/vault/policies", Tag: "vault", Summary: "List the org's vault policies (who may read which secrets)",
			Action: authz.VaultPolicyRead, On: httpapi.OnOrg, Response: []PolicyJSON{}, Handler: s.apiPolicies},
		httpapi.Route{Method: "PUT", Path: org + "/vault/policies/{name}", Tag: "vault", Summary: "Create or replace a vault policy (owners)",
			Action: authz.VaultPolicyWrite, On: httpapi.OnOrg, Request: PutPolicyRequest{}, Response: PolicyJSON{}, Handler: s.apiPutPolicy},
		httpapi.Route{Method: "DELETE", Path: org + "/vault/policies/{name}", Tag: "vault", Summary: "Delete a vault policy (owners)",
			Action: authz.VaultPolicyWrite, On: httpapi.OnOrg, Status: http.StatusNoContent, Handler: s.apiDeletePolicy},
		httpapi.Route{Method: "GET", Path: org + "/vault/leaks", Tag: "vault", Summary: "List leak alerts (?open=true: not yet rotated)",
			Action: authz.VaultSecretList, On: httpapi.OnOrg, Response: []LeakJSON{}, Handler: s.apiLeaks},
		httpapi.Route{Method: "GET", Path: org + "/projects/{project}/vault/settings", Tag: "vault", Summary: "Show the project's vault settings",
			Action: authz.VaultSecretList, On: httpapi.OnProject, Response: SettingsJSON{}, Handler: s.apiSettings},
		httpapi.Route{Method: "PATCH", Path: org + "/projects/{project}/vault/settings", Tag: "vault", Summary: "Change rotation on leak and restarts on rotation",
			Action: authz.VaultSettingsWrite, On: httpapi.OnProject, Request: SettingsRequest{}, Response: SettingsJSON{}, Handler: s.apiSetSettings},
		httpapi.Route{Method: "GET", Path: keys, Tag: "vault", Summary: "List the project's signing keys (public halves)",
			Action: authz.VaultKeyRead, On: httpapi.OnProject, Response: []SigningKeyJSON{}, Handler: s.apiKeys},
		httpapi.Route{Method: "POST", Path: keys, Tag: "vault", Summary: "Generate a signing key in the vault (its private key never leaves it)",
			Action: authz.VaultKeyWrite, On: httpapi.OnProject, Request: CreateKeyRequest{}, Response: SigningKeyJSON{}, Status: http.StatusCreated, Handler: s.apiCreateKey},
		httpapi.Route{Method: "GET", Path: keys + "/{name}", Tag: "vault", Summary: "Show a signing key's public key",
			Action: authz.VaultKeyRead, On: httpapi.OnProject, Response: SigningKeyJSON{}, Handler: s.apiKey},
		httpapi.Route{Method: "DELETE", Path: keys + "/{name}", Tag: "vault", Summary: "Delete a signing key",
			Action: authz.VaultKeyWrite, On: httpapi.OnProject, Status: http.StatusNoContent, Handler: s.apiDeleteKey},
		httpapi.Route{Method: "POST", Path: keys + "/{name}/sign", Tag: "vault", Summary: "Sign a digest with a vault key (audited)",
			Action: authz.VaultKeyWrite, On: httpapi.OnProject, Request: SignRequest{}, Response: SignResponse{}, Handler: s.apiSign},
		httpapi.Route{Method: "GET", Path: httpapi.Prefix + "/vault/site-key", Tag: "vault", Summary: "The site signing key's public half (the registry signs images with it)",
			Action: authz.Public, Response: SiteKeyJSON{}, Handler: s.apiSiteKey},
		httpapi.Route{Method: "GET", Path: httpapi.Prefix + "/vault/kek", Tag: "vault", Summary: "Show the key-encryption key and how many data keys each version wraps",
			Action: authz.VaultAdmin, Response: KEKJSON{}, Handler: s.apiKEK},
		httpapi.Route{Method: "POST", Path: httpapi.Prefix + "/vault/kek/rotate", Tag: "vault", Summary: "Rotate the key-encryption key and re-wrap every data key (site administrators)",
			Action: authz.VaultAdmin, Response: KEKJSON{}, Handler: s.apiRotateKEK},
	)
	return rs
}

// scopeOf is the scope a call's path names.
func scopeOf(c *httpapi.Call) Scope {
	return Scope{Org: c.Org.Name, Project: c.Project.Name, Env: c.R.PathValue("env")}
}

func refOf(c *httpapi.Call) (Ref, error) {
	r := Ref{Scope: scopeOf(c), Name: c.R.PathValue("name")}
	if err := r.Scope.Validate(); err != nil {
		return Ref{}, err
	}
	return r, ValidateName(r.Name)
}

func readerOf(c *httpapi.Call, via string) Reader {
	return Reader{UserID: c.P.User.ID, Username: c.P.User.Username, Via: via}
}

func (s *Service) apiList(c *httpapi.Call) error {
	list, err := s.List(c.R.Context(), scopeOf(c))
	if err != nil {
		return err
	}
	now := s.now()
	out := make([]SecretJSON, len(list))
	for i, sec := range list {
		out[i] = SecretOf(sec, now)
	}
	return c.JSON(out)
}

func (s *Service) apiGet(c *httpapi.Call) error {
	ref, err := refOf(c)
	if err != nil {
		return err
	}
	sec, err := s.Metadata(c.R.Context(), ref)
	if err != nil {
		return err
	}
	return c.JSON(SecretOf(sec, s.now()))
}

func (s *Service) writeResponse(c *httpapi.Call, sec Secret, v Version, err error) error {
	if err != nil {
		return err
	}
	return c.JSON(WriteResponse{Secret: SecretOf(sec, s.now()), Version: VersionOf(v, sec.CurrentVersion)})
}

func (s *Service) apiSet(c *httpapi.Call) error {
	var req SetSecretRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	ref, err := refOf(c)
	if err != nil {
		return err
	}
	sec, v, err := s.Set(c.R.Context(), ref, Write{Value: NewValue([]byte(req.Value)), Format: req.Format, Description: req.Description,
		ExpiresAt: req.ExpiresAt, Generator: req.Generator, CAS: req.CAS})
	return s.writeResponse(c, sec, v, err)
}

func (s *Service) apiDelete(c *httpapi.Call) error {
	ref, err := refOf(c)
	if err != nil {
		return err
	}
	if err := s.Delete(c.R.Context(), ref); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Service) apiReveal(c *httpapi.Call) error {
	var req RevealRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	ref, err := refOf(c)
	if err != nil {
		return err
	}
	val, _, v, err := s.Read(c.R.Context(), readerOf(c, "api"), ref, req.Version)
	if err != nil {
		return err
	}
	return c.JSON(RevealResponse{Ref: ref.String(), Version: v.Version, Format: v.Format, Value: string(val.Reveal())})
}

func (s *Service) apiHistory(c *httpapi.Call) error {
	ref, err := refOf(c)
	if err != nil {
		return err
	}
	sec, vs, err := s.History(c.R.Context(), ref)
	if err != nil {
		return err
	}
	out := HistoryResponse{Secret: SecretOf(sec, s.now()), Versions: make([]VersionJSON, len(vs))}
	for i, v := range vs {
		out.Versions[i] = VersionOf(v, sec.CurrentVersion)
	}
	return c.JSON(out)
}

func (s *Service) apiRotate(c *httpapi.Call) error {
	var req RotateRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	ref, err := refOf(c)
	if err != nil {
		return err
	}
	var val *Value
	if req.Value != nil {
		v := NewValue([]byte(*req.Value))
		val = &v
	}
	sec, v, err := s.Rotate(c.R.Context(), ref, val)
	return s.writeResponse(c, sec, v, err)
}

func (s *Service) apiRollback(c *httpapi.Call) error {
	var req RollbackRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	ref, err := refOf(c)
	if err != nil {
		return err
	}
	sec, v, err := s.Rollback(c.R.Context(), ref, req.Version)
	return s.writeResponse(c, sec, v, err)
}

// PolicyOf converts a policy for the API.
func PolicyOf(p Policy) PolicyJSON {
	subs := make([]string, len(p.Subjects))
	for i, s := range p.Subjects {
		subs[i] = s.String()
	}
	return PolicyJSON{Name: p.Name, Description: p.Description, Secrets: p.Secrets, Subjects: subs, CreatedAt: p.CreatedAt, CreatedBy: p.CreatedBy}
}

func (s *Service) apiPolicies(c *httpapi.Call) error {
	ps, err := s.Policies(c.R.Context(), c.Org.Name)
	if err != nil {
		return err
	}
	out := make([]PolicyJSON, len(ps))
	for i, p := range ps {
		out[i] = PolicyOf(p)
	}
	return c.JSON(out)
}

func (s *Service) apiPutPolicy(c *httpapi.Call) error {
	var req PutPolicyRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	p, err := s.PutPolicy(c.R.Context(), c.Org.Name, NewPolicy{Name: c.R.PathValue("name"), Description: req.Description,
		Secrets: req.Secrets, Subjects: req.Subjects})
	if err != nil {
		return err
	}
	return c.JSON(PolicyOf(p))
}

func (s *Service) apiDeletePolicy(c *httpapi.Call) error {
	if err := s.DeletePolicy(c.R.Context(), c.Org.Name, c.R.PathValue("name")); err != nil {
		return err
	}
	return c.NoContent()
}

// LeakOf converts a leak alert for the API.
func LeakOf(l Leak) LeakJSON {
	return LeakJSON{ID: l.ID, Ref: l.Ref.String(), Version: l.Version, Current: l.Current, Source: l.Source, Location: l.Location,
		FoundAt: l.FoundAt, RotatedVersion: l.RotatedVersion, ResolvedAt: l.ResolvedAt}
}

func (s *Service) apiLeaks(c *httpapi.Call) error {
	open := false
	if v := c.R.URL.Query().Get("open"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return apperr.InvalidField("open", "open must be true or false")
		}
		open = b
	}
	manage := authz.Check(c.P.Subject, authz.VaultPolicyWrite, c.Org.Resource()) == nil
	ls, err := s.LeaksFor(c.R.Context(), c.Org.Name, open, readerOf(c, "api"), manage)
	if err != nil {
		return err
	}
	out := make([]LeakJSON, len(ls))
	for i, l := range ls {
		out[i] = LeakOf(l)
	}
	return c.JSON(out)
}

func (s *Service) apiSettings(c *httpapi.Call) error {
	ps, err := s.Settings(c.R.Context(), scopeOf(c))
	if err != nil {
		return err
	}
	return c.JSON(SettingsJSON(ps))
}

func (s *Service) apiSetSettings(c *httpapi.Call) error {
	var req SettingsRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	ps, err := s.Settings(c.R.Context(), scopeOf(c))
	if err != nil {
		return err
	}
	if req.RotateOnLeak != nil {
		ps.RotateOnLeak = *req.RotateOnLeak
	}
	if req.RestartOnRotate != nil {
		ps.RestartOnRotate = *req.RestartOnRotate
	}
	if err := s.SetSettings(c.R.Context(), scopeOf(c), ps); err != nil {
		return err
	}
	return c.JSON(SettingsJSON(ps))
}

// SigningKeyOf converts a signing key's public half for the API.
func SigningKeyOf(k SigningKey) SigningKeyJSON {
	return SigningKeyJSON{Ref: k.Ref.String(), Name: k.Ref.Name, Algorithm: k.Algorithm, PublicKey: string(k.PublicKeyPEM),
		CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy}
}

func (s *Service) apiKeys(c *httpapi.Call) error {
	ks, err := s.SigningKeys(c.R.Context(), scopeOf(c))
	if err != nil {
		return err
	}
	out := make([]SigningKeyJSON, len(ks))
	for i, k := range ks {
		out[i] = SigningKeyOf(k)
	}
	return c.JSON(out)
}

func (s *Service) apiCreateKey(c *httpapi.Call) error {
	var req CreateKeyRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	k, err := s.CreateSigningKey(c.R.Context(), Ref{Scope: scopeOf(c), Name: req.Name}, req.Algorithm)
	if err != nil {
		return err
	}
	return c.JSON(SigningKeyOf(k))
}

func (s *Service) apiKey(c *httpapi.Call) error {
	ref, err := refOf(c)
	if err != nil {
		return err
	}
	k, err := s.SigningKey(c.R.Context(), ref)
	if err != nil {
		return err
	}
	return c.JSON(SigningKeyOf(k))
}

func (s *Service) apiDeleteKey(c *httpapi.Call) error {
	ref, err := refOf(c)
	if err != nil {
		return err
	}
	if err := s.DeleteSigningKey(c.R.Context(), ref); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Service) apiSign(c *httpapi.Call) error {
	var req SignRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	digest, err := hex.DecodeString(req.Digest)
	if err != nil || len(digest) == 0 {
		return apperr.InvalidField("digest", "digest must be hex")
	}
	ref, err := refOf(c)
	if err != nil {
		return err
	}
	sig, err := s.Sign(c.R.Context(), ref.String(), digest)
	if err != nil {
		return err
	}
	return c.JSON(SignResponse{Signature: hex.EncodeToString(sig)})
}

func kekJSON(st KEKStatus) KEKJSON {
	out := KEKJSON{Kind: st.Kind, Current: st.Current, Pending: st.Pending, ByVersion: map[string]int64{}, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt}
	for v, n := range st.ByVersion {
		out.ByVersion[strconv.Itoa(v)] = n
	}
	return out
}

func (s *Service) apiKEK(c *httpapi.Call) error {
	st, err := s.KEKStatus(c.R.Context())
	if err != nil {
		return err
	}
	return c.JSON(kekJSON(st))
}

func (s *Service) apiRotateKEK(c *httpapi.Call) error {
	if _, err := s.RotateKEK(c.R.Context()); err != nil {
		return err
	}
	return s.apiKEK(c)
}
