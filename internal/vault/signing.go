package vault

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// Signing key algorithms. ECDSA P-256 over a SHA-256 digest is what cosign
// signs and verifies by default; Ed25519 signs the bytes it is given.
const (
	AlgECDSAP256 = "ecdsa-p256"
	AlgEd25519   = "ed25519"
)

// SigningKey is a key pair held in the vault: its private half never
// leaves it, only signatures and the public key do.
type SigningKey struct {
	ID        int64
	Ref       Ref
	Algorithm string
	// PublicKeyPEM is the public key as a PEM "PUBLIC KEY" block (PKIX),
	// the format cosign verify --key reads.
	PublicKeyPEM []byte
	CreatedAt    time.Time
	CreatedBy    string
	uid          string
	orgID        int64
	sealed       sealed
}

func keyTarget(k SigningKey) audit.Target {
	return audit.Target{Type: "signing_key", ID: strconv.FormatInt(k.ID, 10), Name: k.Ref.String()}
}

// CreateSigningKey generates a key pair named ref in the vault.
func (s *Service) CreateSigningKey(ctx context.Context, ref Ref, algorithm string) (SigningKey, error) {
	if err := ValidateName(ref.Name); err != nil {
		return SigningKey{}, err
	}
	if algorithm == "" {
		algorithm = AlgECDSAP256
	}
	var (
		priv crypto.Signer
		err  error
	)
	switch algorithm {
	case AlgECDSAP256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEd25519:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return SigningKey{}, apperr.InvalidField("algorithm", "algorithm must be %s or %s", AlgECDSAP256, AlgEd25519)
	}
	if err != nil {
		return SigningKey{}, err
	}
	p, err := s.resolve(ctx, ref.Scope)
	if err != nil {
		return SigningKey{}, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return SigningKey{}, err
	}
	defer clear(pkcs8)
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return SigningKey{}, err
	}
	k := SigningKey{Ref: ref, Algorithm: algorithm, PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		CreatedAt: s.now().UTC().Truncate(time.Microsecond), CreatedBy: actor(ctx), orgID: p.org.ID}
	if k.uid, err = newUID(); err != nil {
		return SigningKey{}, err
	}
	if k.sealed, err = s.seal(ctx, pkcs8, signingAAD(k.uid)); err != nil {
		return SigningKey{}, err
	}
	err = s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO vault_signing_keys (uid, org_id, project_id, name, scope_key, algorithm, public_key,
			ciphertext, wrapped_dek, kek_version, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			k.uid, p.org.ID, p.projectID(), ref.Name, p.scopeKey(ref.Name), algorithm, pub, k.sealed.ciphertext, k.sealed.wrapped,
			k.sealed.kekVersion, store.Time(k.CreatedAt), k.CreatedBy).Scan(&k.ID)
		if apperr.Is(err, apperr.Conflict) {
			return apperr.E(apperr.Conflict, "signing key %s exists already", ref)
		}
		if err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "vault.key.create", OrgID: p.org.ID, Target: keyTarget(k),
			Details: map[string]any{"algorithm": algorithm}})
	})
	return k, err
}

const selectKey = `SELECT id, uid, org_id, name, algorithm, public_key, ciphertext, wrapped_dek, kek_version, created_at, created_by FROM vault_signing_keys`

func scanKey(r interface{ Scan(...any) error }, sc Scope) (SigningKey, error) {
	var (
		k   SigningKey
		pub []byte
	)
	err := r.Scan(&k.ID, &k.uid, &k.orgID, &k.Ref.Name, &k.Algorithm, &pub, &k.sealed.ciphertext, &k.sealed.wrapped,
		&k.sealed.kekVersion, store.TimeDest(&k.CreatedAt), &k.CreatedBy)
	k.Ref.Scope = sc
	k.PublicKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	return k, err
}

// SigningKey returns a key's public half and metadata.
func (s *Service) SigningKey(ctx context.Context, ref Ref) (SigningKey, error) {
	if err := ValidateName(ref.Name); err != nil {
		return SigningKey{}, err
	}
	p, err := s.resolve(ctx, ref.Scope)
	if err != nil {
		return SigningKey{}, err
	}
	k, err := scanKey(s.db.QueryRow(ctx, selectKey+" WHERE scope_key = ?", p.scopeKey(ref.Name)), ref.Scope)
	if apperr.Is(err, apperr.NotFound) {
		return SigningKey{}, apperr.E(apperr.NotFound, "signing key %s not found", ref)
	}
	return k, err
}

// SigningKeys lists the keys directly in a scope.
func (s *Service) SigningKeys(ctx context.Context, sc Scope) ([]SigningKey, error) {
	p, err := s.resolve(ctx, sc)
	if err != nil {
		return nil, err
	}
	// Names hold no '/', so the scope key's prefix selects this scope only.
	prefix := strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(p.scopeKey(""))
	rows, err := s.db.Query(ctx, selectKey+` WHERE org_id = ? AND scope_key LIKE ? ESCAPE '\' ORDER BY name`, p.org.ID, prefix+"%")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SigningKey
	for rows.Next() {
		k, err := scanKey(rows, sc)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteSigningKey deletes a key pair; signatures it made can no longer be
// checked against the vault (keep the public key where verifiers need it).
func (s *Service) DeleteSigningKey(ctx context.Context, ref Ref) error {
	k, err := s.SigningKey(ctx, ref)
	if err != nil {
		return err
	}
	return s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM vault_signing_keys WHERE id = ?", k.ID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "vault.key.delete", OrgID: k.orgID, Target: keyTarget(k)})
	})
}

// Sign signs digest with the key named keyRef (ORG/[PROJECT/[ENV/]]NAME).
// For ECDSA keys digest is a SHA-256 digest (32 bytes) and the signature
// is ASN.1 DER, as cosign makes; for Ed25519 keys digest is the message.
// The private key is decrypted for the call and never returned. Every
// signature is audited.
func (s *Service) Sign(ctx context.Context, keyRef string, digest []byte) ([]byte, error) {
	ref, err := ParseRef(keyRef)
	if err != nil {
		return nil, err
	}
	k, err := s.SigningKey(ctx, ref)
	if err != nil {
		return nil, err
	}
	switch {
	case k.Algorithm == AlgECDSAP256 && len(digest) != 32:
		return nil, apperr.InvalidField("digest", "an ECDSA P-256 key signs a SHA-256 digest of 32 bytes (got %d)", len(digest))
	case len(digest) == 0 || len(digest) > 64<<10:
		return nil, apperr.InvalidField("digest", "the message to sign must have 1 to 65536 bytes")
	}
	der, err := s.open(ctx, k.sealed, signingAAD(k.uid))
	if err != nil {
		return nil, err
	}
	defer clear(der)
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "the stored signing key is malformed")
	}
	var sig []byte
	switch key := priv.(type) {
	case *ecdsa.PrivateKey:
		sig, err = ecdsa.SignASN1(rand.Reader, key, digest)
	case ed25519.PrivateKey:
		sig = ed25519.Sign(key, digest)
	default:
		return nil, apperr.E(apperr.Internal, "the stored signing key has an unknown type")
	}
	if err != nil {
		return nil, err
	}
	err = s.appendAudit(ctx, audit.Record{Action: "vault.key.sign", OrgID: k.orgID, Target: keyTarget(k),
		Details: map[string]any{"digest": hex.EncodeToString(digest[:min(len(digest), 64)]), "bytes": len(digest)}})
	if err != nil {
		return nil, err
	}
	return sig, nil
}

// PublicKey returns the PEM public key of the key named keyRef.
func (s *Service) PublicKey(ctx context.Context, keyRef string) ([]byte, error) {
	ref, err := ParseRef(keyRef)
	if err != nil {
		return nil, err
	}
	k, err := s.SigningKey(ctx, ref)
	if err != nil {
		return nil, err
	}
	return k.PublicKeyPEM, nil
}
