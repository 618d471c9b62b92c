package deploy

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// Connection is a service connection: how Rampart reaches an
// environment's target, with a credential scoped to that one
// environment. For Kubernetes it is a namespaced service account's token
// (least privilege), never a cluster-admin kubeconfig. The credential is
// sealed at rest and never shown again after it is set.
type Connection struct {
	EnvironmentID int64  `json:"-"`
	Kind          string `json:"kind"`
	// Server is the Kubernetes API server URL (https).
	Server string `json:"server,omitempty"`
	// Namespace is the one namespace the environment deploys to.
	Namespace string `json:"namespace,omitempty"`
	// CACert is the PEM bundle the server's certificate is checked with.
	CACert        string    `json:"ca_cert,omitempty"`
	HasCredential bool      `json:"has_credential"`
	CreatedAt     time.Time `json:"created_at"`
	CreatedBy     string    `json:"created_by"`
	// Token is the credential, only in memory (never in JSON).
	Token Value `json:"-"`
}

// ConnectionSpec sets a service connection; Token is write-only.
type ConnectionSpec struct {
	Kind      string `json:"kind"`
	Server    string `json:"server,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	CACert    string `json:"ca_cert,omitempty"`
	Token     string `json:"token,omitempty"`
}

var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (c ConnectionSpec) validate() error {
	if c.Kind != KindKubernetes {
		return apperr.InvalidField("kind", "service connections are of kind kubernetes (the node runtime needs none)")
	}
	u, err := url.Parse(c.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(c.Server) > 500 {
		return apperr.InvalidField("server", "server must be the https:// URL of the Kubernetes API server")
	}
	if !dnsLabelRE.MatchString(c.Namespace) {
		return apperr.InvalidField("namespace", "namespace must be a DNS label (lowercase letters, digits, dashes)")
	}
	if len(c.CACert) > 64<<10 {
		return apperr.InvalidField("ca_cert", "CA bundle over 64 KiB")
	}
	if c.CACert != "" {
		if b, _ := pem.Decode([]byte(c.CACert)); b == nil || b.Type != "CERTIFICATE" {
			return apperr.InvalidField("ca_cert", "ca_cert must be PEM certificates")
		}
	}
	if c.Token == "" || len(c.Token) > 16<<10 {
		return apperr.InvalidField("token", "token is required (a namespaced service account's token, at most 16 KiB)")
	}
	for _, r := range c.Token {
		if r <= ' ' || r == 0x7f {
			return apperr.InvalidField("token", "token must be one line without spaces")
		}
	}
	return nil
}

func connAAD(envID int64) string { return "deploy-connection:" + strconv.FormatInt(envID, 10) }

// PutConnection sets an environment's service connection. The token is
// sealed with the environment's id as associated data, so a sealed
// token copied to another environment's row does not open.
func (s *Service) PutConnection(ctx context.Context, sc Scope, envName string, spec ConnectionSpec) (Connection, error) {
	if err := spec.validate(); err != nil {
		return Connection{}, err
	}
	var out Connection
	err := s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		e, err := s.env(ctx, tx, sc, envName)
		if err != nil {
			return err
		}
		if e.Target.Kind != spec.Kind {
			return apperr.InvalidField("kind", "environment %s deploys to %s, not %s", envName, e.Target.Kind, spec.Kind)
		}
		// One namespace per environment: two environments sharing one
		// would overwrite each other's objects.
		var other int64
		err = tx.QueryRow(ctx, "SELECT environment_id FROM deploy_connections WHERE server = ? AND namespace = ? AND environment_id <> ? LIMIT 1",
			spec.Server, spec.Namespace, e.ID).Scan(&other)
		if err == nil {
			return &apperr.Error{Kind: apperr.Conflict, Field: "namespace", Msg: fmt.Sprintf("namespace %s of %s is another environment's: give each environment its own", spec.Namespace, spec.Server)}
		}
		if !apperr.Is(err, apperr.NotFound) {
			return err
		}
		sealed, err := s.d.Sealer.Seal([]byte(spec.Token), connAAD(e.ID))
		if err != nil {
			return err
		}
		_, who := actor(ctx)
		if _, err := tx.Exec(ctx, "DELETE FROM deploy_connections WHERE environment_id = ?", e.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO deploy_connections (environment_id, kind, server, namespace, ca_cert, credential, created_at, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, spec.Kind, spec.Server, spec.Namespace, spec.CACert, sealed, store.Time(s.d.Now()), who); err != nil {
			return err
		}
		if out, err = s.connection(ctx, tx, e.ID, false); err != nil {
			return err
		}
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: "deploy.connection.set", OrgID: sc.OrgID,
			Target:  audit.Target{Type: "environment", ID: strconv.FormatInt(e.ID, 10), Name: sc.String() + "/" + envName},
			Details: map[string]any{"kind": spec.Kind, "server": spec.Server, "namespace": spec.Namespace}})
	})
	return out, err
}

// Connection returns an environment's service connection without its
// credential.
func (s *Service) Connection(ctx context.Context, sc Scope, envName string) (Connection, error) {
	e, err := s.env(ctx, s.d.DB, sc, envName)
	if err != nil {
		return Connection{}, err
	}
	return s.connection(ctx, s.d.DB, e.ID, false)
}

// DeleteConnection removes an environment's service connection.
func (s *Service) DeleteConnection(ctx context.Context, sc Scope, envName string) error {
	return s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		e, err := s.env(ctx, tx, sc, envName)
		if err != nil {
			return err
		}
		n, err := tx.Exec(ctx, "DELETE FROM deploy_connections WHERE environment_id = ?", e.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.NotFound, "environment %s has no service connection", envName)
		}
		return s.d.Audit.AppendTx(ctx, tx, audit.Record{Action: "deploy.connection.delete", OrgID: sc.OrgID,
			Target: audit.Target{Type: "environment", ID: strconv.FormatInt(e.ID, 10), Name: sc.String() + "/" + envName}})
	})
}

// connection reads a connection; with open it unseals the token.
func (s *Service) connection(ctx context.Context, q store.Querier, envID int64, open bool) (Connection, error) {
	var (
		c      Connection
		sealed []byte
	)
	err := q.QueryRow(ctx, `SELECT environment_id, kind, server, namespace, ca_cert, credential, created_at, created_by
		FROM deploy_connections WHERE environment_id = ?`, envID).Scan(&c.EnvironmentID, &c.Kind, &c.Server, &c.Namespace, &c.CACert,
		&sealed, store.TimeDest(&c.CreatedAt), &c.CreatedBy)
	if apperr.Is(err, apperr.NotFound) {
		return Connection{}, apperr.E(apperr.NotFound, "the environment has no service connection")
	}
	if err != nil {
		return Connection{}, err
	}
	c.HasCredential = len(sealed) > 0
	if open && c.HasCredential {
		tok, err := s.d.Sealer.Open(sealed, connAAD(envID))
		if err != nil {
			return Connection{}, apperr.Wrap(err, apperr.Internal, "the service connection's credential cannot be opened")
		}
		c.Token = Value(tok)
	}
	return c, nil
}
