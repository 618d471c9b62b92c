package scm

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
)

// SSHKey is a user's registered public key: it authenticates git over SSH
// and verifies signed commits.
type SSHKey struct {
	ID          int64
	UserID      int64
	Name        string
	Fingerprint string // SHA256:…
	PublicKey   string // authorized_keys form, without comment
	Type        string
	CreatedAt   time.Time
	LastUsedAt  time.Time
}

const maxSSHKeysPerUser = 50

// ParseAuthorizedKey parses one public key in authorized_keys form
// ("ssh-ed25519 AAAA… comment"), refusing options, certificates, weak
// keys and trailing data.
func ParseAuthorizedKey(text string) (ssh.PublicKey, string, error) {
	text = strings.TrimSpace(text)
	if text == "" || len(text) > 16<<10 {
		return nil, "", apperr.InvalidField("key", "key must be one public key line of at most 16 KiB")
	}
	if strings.ContainsAny(text, "\n\r") {
		return nil, "", apperr.InvalidField("key", "give one key (one line)")
	}
	pk, comment, opts, rest, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		return nil, "", apperr.InvalidField("key", "not an SSH public key in authorized_keys form (ssh-ed25519 AAAA…)")
	}
	if len(opts) > 0 || len(rest) > 0 {
		return nil, "", apperr.InvalidField("key", "give the key alone, without options or more keys")
	}
	switch pk.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
	case ssh.KeyAlgoRSA:
		if ck, ok := pk.(ssh.CryptoPublicKey); ok {
			if rk, ok := ck.CryptoPublicKey().(interface{ Size() int }); ok && rk.Size()*8 < 2048 {
				return nil, "", apperr.InvalidField("key", "RSA keys must have at least 2048 bits")
			}
		}
	default:
		return nil, "", apperr.InvalidField("key", "key type %s is not accepted (use ed25519, ECDSA or RSA ≥ 2048 bits)", pk.Type())
	}
	return pk, comment, nil
}

func keyTarget(k SSHKey) audit.Target {
	return audit.Target{Type: "ssh_key", ID: strconv.FormatInt(k.ID, 10), Name: k.Fingerprint}
}

// AddSSHKey registers a public key for user u.
func (s *Service) AddSSHKey(ctx context.Context, u identity.User, name, text string) (SSHKey, error) {
	pk, comment, err := ParseAuthorizedKey(text)
	if err != nil {
		return SSHKey{}, err
	}
	if name == "" {
		name = comment
	}
	if name == "" {
		name = pk.Type()
	}
	if err := validateText("name", name, 100, false); err != nil {
		return SSHKey{}, err
	}
	k := SSHKey{UserID: u.ID, Name: name, Fingerprint: ssh.FingerprintSHA256(pk), Type: pk.Type(),
		PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk)))}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM ssh_keys WHERE user_id = ?", u.ID).Scan(&n); err != nil {
			return err
		}
		if n >= maxSSHKeysPerUser {
			return apperr.E(apperr.Invalid, "a user may register at most %d SSH keys", maxSSHKeysPerUser)
		}
		now := s.now()
		err := tx.QueryRow(ctx, "INSERT INTO ssh_keys (user_id, name, fingerprint, public_key, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
			u.ID, k.Name, k.Fingerprint, k.PublicKey, store.Time(now)).Scan(&k.ID)
		if apperr.Is(err, apperr.Conflict) {
			return &apperr.Error{Kind: apperr.Conflict, Field: "key", Msg: "this key is already registered"}
		}
		if err != nil {
			return err
		}
		k.CreatedAt = now.UTC().Truncate(time.Microsecond)
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "user.ssh_key.add", Target: keyTarget(k),
			Details: map[string]any{"user": u.Username, "name": k.Name, "type": k.Type}})
	})
	return k, err
}

const selectKey = "SELECT id, user_id, name, fingerprint, public_key, created_at, last_used_at FROM ssh_keys"

func scanKey(r interface{ Scan(...any) error }) (SSHKey, error) {
	var k SSHKey
	err := r.Scan(&k.ID, &k.UserID, &k.Name, &k.Fingerprint, &k.PublicKey, store.TimeDest(&k.CreatedAt), store.TimeDest(&k.LastUsedAt))
	if t, _, ok := strings.Cut(k.PublicKey, " "); ok {
		k.Type = t
	}
	return k, err
}

// SSHKeys lists a user's keys, oldest first.
func (s *Service) SSHKeys(ctx context.Context, userID int64) ([]SSHKey, error) {
	rows, err := s.db.Query(ctx, selectKey+" WHERE user_id = ? ORDER BY id", userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SSHKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RemoveSSHKey deletes one of u's keys.
func (s *Service) RemoveSSHKey(ctx context.Context, u identity.User, id int64) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		k, err := scanKey(tx.QueryRow(ctx, selectKey+" WHERE id = ? AND user_id = ?", id, u.ID))
		if apperr.Is(err, apperr.NotFound) {
			return apperr.E(apperr.NotFound, "SSH key %d not found", id)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM ssh_keys WHERE id = ?", id); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "user.ssh_key.remove", Target: keyTarget(k),
			Details: map[string]any{"user": u.Username, "name": k.Name}})
	})
}

// UserBySSHKey returns the enabled user a public key belongs to.
func (s *Service) UserBySSHKey(ctx context.Context, pk ssh.PublicKey) (identity.User, SSHKey, error) {
	k, err := scanKey(s.db.QueryRow(ctx, selectKey+" WHERE fingerprint = ?", ssh.FingerprintSHA256(pk)))
	if err != nil {
		return identity.User{}, SSHKey{}, apperr.E(apperr.Unauthenticated, "unknown SSH key")
	}
	// The fingerprint matched; compare the key itself too.
	if k.PublicKey != strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) {
		return identity.User{}, SSHKey{}, apperr.E(apperr.Unauthenticated, "unknown SSH key")
	}
	u, err := s.ids.User(ctx, k.UserID)
	if err != nil || u.Disabled {
		return identity.User{}, SSHKey{}, apperr.E(apperr.Unauthenticated, "unknown SSH key")
	}
	now := s.now()
	if now.Sub(k.LastUsedAt) > time.Minute {
		if _, err := s.db.Exec(ctx, "UPDATE ssh_keys SET last_used_at = ? WHERE id = ?", store.Time(now), k.ID); err != nil {
			return identity.User{}, SSHKey{}, fmt.Errorf("touch ssh key: %w", err)
		}
	}
	return u, k, nil
}
