package oidcop

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// rsaBits is the size of signing keys.
const rsaBits = 2048

// keyOverlap is added to the ID token lifetime to decide how long a
// replaced key stays published, for clock skew and slow verifiers.
const keyOverlap = 5 * time.Minute

// signingKey is an RS256 key pair; it implements op.SigningKey and op.Key.
type signingKey struct {
	id        string
	priv      *rsa.PrivateKey
	createdAt time.Time
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Algorithm() jose.SignatureAlgorithm          { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.priv }
func (k *signingKey) ID() string                                  { return k.id }
func (k *signingKey) Use() string                                 { return "sig" }

// publicKey is a published verification key (op.Key).
type publicKey struct {
	id  string
	pub *rsa.PublicKey
}

func (k publicKey) ID() string                         { return k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.pub }

var (
	_ op.SigningKey = (*signingKey)(nil)
	_ op.Key        = publicKey{}
)

func keyAAD(kid string) string { return "oidc:signing-key:" + kid }

// KeyInfo describes a signing key (never its private part).
type KeyInfo struct {
	ID        string
	Algorithm string
	CreatedAt time.Time
	// RetireAfter is when a replaced key leaves the key set (zero for the
	// current key).
	RetireAfter time.Time
	Current     bool
}

// currentKey returns the newest signing key, creating or rotating it when
// there is none or it is older than the rotation period.
func (p *Provider) currentKey(ctx context.Context) (*signingKey, error) {
	var (
		kid     string
		created time.Time
	)
	err := p.db.QueryRow(ctx, "SELECT id, created_at FROM oidc_signing_keys WHERE retire_after IS NULL ORDER BY created_at DESC, id DESC LIMIT 1").
		Scan(&kid, store.TimeDest(&created))
	switch {
	case apperr.Is(err, apperr.NotFound):
		if _, err := p.rotate(ctx, "initial", time.Time{}); err != nil {
			return nil, err
		}
		return p.currentKey(ctx)
	case err != nil:
		return nil, err
	case p.now().Sub(created) >= p.rotation:
		if _, err := p.rotate(ctx, "scheduled", created); err != nil {
			return nil, err
		}
		return p.currentKey(ctx)
	}
	return p.loadKey(ctx, kid)
}

// loadKey returns a parsed private key, from the cache or the store.
func (p *Provider) loadKey(ctx context.Context, kid string) (*signingKey, error) {
	p.keyMu.Lock()
	k, ok := p.keys[kid]
	p.keyMu.Unlock()
	if ok {
		return k, nil
	}
	var (
		sealed  []byte
		created time.Time
	)
	if err := p.db.QueryRow(ctx, "SELECT private_key, created_at FROM oidc_signing_keys WHERE id = ?", kid).Scan(&sealed, store.TimeDest(&created)); err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", kid, err)
	}
	der, err := p.sealer.Open(sealed, keyAAD(kid))
	if err != nil {
		return nil, fmt.Errorf("unseal signing key %s: %w", kid, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse signing key %s: %w", kid, err)
	}
	rk, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s is not RSA", kid)
	}
	k = &signingKey{id: kid, priv: rk, createdAt: created}
	p.keyMu.Lock()
	p.keys[kid] = k
	p.keyMu.Unlock()
	return k, nil
}

// rotate creates a new signing key and schedules the current one to leave
// the key set once every ID token it signed has expired. With a non-zero
// ifCreatedAt the rotation happens only if the newest key is still that
// one (another replica may have rotated meanwhile).
func (p *Provider) rotate(ctx context.Context, reason string, ifCreatedAt time.Time) (KeyInfo, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return KeyInfo{}, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return KeyInfo{}, err
	}
	kid := randomID(12)
	sealed, err := p.sealer.Seal(der, keyAAD(kid))
	if err != nil {
		return KeyInfo{}, err
	}
	now := p.now().UTC().Truncate(time.Microsecond)
	info := KeyInfo{ID: kid, Algorithm: string(jose.RS256), CreatedAt: now, Current: true}
	retire := now.Add(p.idTTL + keyOverlap)
	err = p.db.Tx(ctx, func(tx *store.Tx) error {
		var (
			prev        string
			prevCreated time.Time
		)
		err := tx.QueryRow(ctx, "SELECT id, created_at FROM oidc_signing_keys WHERE retire_after IS NULL ORDER BY created_at DESC, id DESC LIMIT 1").
			Scan(&prev, store.TimeDest(&prevCreated))
		if err != nil && !apperr.Is(err, apperr.NotFound) {
			return err
		}
		if reason != "manual" && prev != "" && !prevCreated.Equal(ifCreatedAt) {
			info = KeyInfo{} // someone else rotated first
			return nil
		}
		if _, err := tx.Exec(ctx, "UPDATE oidc_signing_keys SET retire_after = ? WHERE retire_after IS NULL", store.Time(retire)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO oidc_signing_keys (id, algorithm, public_key, private_key, created_at)
			VALUES (?, ?, ?, ?, ?)`, kid, string(jose.RS256), pub, sealed, store.Time(now)); err != nil {
			return err
		}
		return p.audit.AppendTx(ctx, tx, audit.Record{Action: "oidc.keys.rotate", Target: audit.Target{Type: "oidc_signing_key", ID: kid},
			Details: map[string]any{"reason": reason, "previous": prev, "algorithm": string(jose.RS256)}})
	})
	if err != nil {
		return KeyInfo{}, err
	}
	if info.ID != "" {
		p.log.InfoContext(ctx, "rotated signing key", "kid", kid, "reason", reason)
	}
	return info, nil
}

// RotateKeys replaces the signing key now (site administrators). The
// previous key stays in the key set until the ID tokens it signed expire.
func (p *Provider) RotateKeys(ctx context.Context) (KeyInfo, error) {
	return p.rotate(ctx, "manual", time.Time{})
}

// Keys lists the published signing keys, the current one first.
func (p *Provider) Keys(ctx context.Context) ([]KeyInfo, error) {
	if _, err := p.currentKey(ctx); err != nil {
		return nil, err
	}
	rows, err := p.db.Query(ctx, `SELECT id, algorithm, created_at, retire_after FROM oidc_signing_keys
		WHERE retire_after IS NULL OR retire_after > ? ORDER BY created_at DESC, id DESC`, store.Time(p.now()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KeyInfo
	for rows.Next() {
		var k KeyInfo
		if err := rows.Scan(&k.ID, &k.Algorithm, store.TimeDest(&k.CreatedAt), store.TimeDest(&k.RetireAfter)); err != nil {
			return nil, err
		}
		k.Current = len(out) == 0 && k.RetireAfter.IsZero()
		out = append(out, k)
	}
	return out, rows.Err()
}

// publicKeys returns the key set: the current key and replaced keys whose
// ID tokens may still be valid.
func (p *Provider) publicKeys(ctx context.Context) ([]op.Key, error) {
	if _, err := p.currentKey(ctx); err != nil {
		return nil, err
	}
	rows, err := p.db.Query(ctx, `SELECT id, public_key FROM oidc_signing_keys WHERE retire_after IS NULL OR retire_after > ?
		ORDER BY created_at DESC, id DESC`, store.Time(p.now()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []op.Key
	for rows.Next() {
		var (
			kid string
			der []byte
		)
		if err := rows.Scan(&kid, &der); err != nil {
			return nil, err
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("parse public key %s: %w", kid, err)
		}
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key %s is not RSA", kid)
		}
		out = append(out, publicKey{id: kid, pub: rk})
	}
	return out, rows.Err()
}
