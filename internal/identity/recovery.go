package identity

import (
	"context"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// RecoveryCodeCount is how many one-time recovery codes a user gets.
const RecoveryCodeCount = 10

const recoveryAlphabet = "abcdefghjkmnpqrstuvwxyz23456789" // no 0/o, 1/l/i

// newRecoveryCodesTx replaces a user's recovery codes with ten new ones and
// returns them (the store keeps only hashes). Each has 16 characters from a
// 31-letter alphabet, about 79 bits: too many to guess, so a fast hash is
// enough.
func (s *Service) newRecoveryCodesTx(ctx context.Context, tx *store.Tx, userID int64) ([]string, error) {
	if _, err := tx.Exec(ctx, "DELETE FROM recovery_codes WHERE user_id = ?", userID); err != nil {
		return nil, err
	}
	now := store.Time(s.now())
	codes := make([]string, RecoveryCodeCount)
	for i := range codes {
		raw, err := s.randomFrom(recoveryAlphabet, 16)
		if err != nil {
			return nil, err
		}
		codes[i] = raw[0:4] + "-" + raw[4:8] + "-" + raw[8:12] + "-" + raw[12:16]
		if _, err := tx.Exec(ctx, "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)",
			userID, hashSecret(normalizeRecoveryCode(codes[i])), now); err != nil {
			return nil, err
		}
	}
	return codes, nil
}

func (s *Service) randomFrom(alphabet string, n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, 1)
	limit := byte(256 - 256%len(alphabet))
	for len(out) < n {
		if _, err := s.rand.Read(buf); err != nil {
			return "", err
		}
		if buf[0] >= limit {
			continue
		}
		out = append(out, alphabet[int(buf[0])%len(alphabet)])
	}
	return string(out), nil
}

func normalizeRecoveryCode(c string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return r
	}, c)
}

// RegenerateRecoveryCodes replaces the user's recovery codes; only a user
// with a second factor enrolled has them.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, userID int64) ([]string, error) {
	var codes []string
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		st, err := mfaStatus(ctx, tx, userID)
		if err != nil {
			return err
		}
		if !st.Enrolled() {
			return apperr.E(apperr.Invalid, "enrol an authenticator app or a security key first")
		}
		if codes, err = s.newRecoveryCodesTx(ctx, tx, userID); err != nil {
			return err
		}
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "user.mfa.recovery.generate", Target: userTarget(u)})
	})
	return codes, err
}

// UseRecoveryCode consumes one recovery code.
func (s *Service) UseRecoveryCode(ctx context.Context, userID int64, code string) error {
	c := normalizeRecoveryCode(code)
	if len(c) != 16 {
		return apperr.E(apperr.Unauthenticated, "wrong or already used recovery code")
	}
	return s.writeTx(ctx, func(tx *store.Tx) error {
		n, err := tx.Exec(ctx, "UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
			store.Time(s.now()), userID, hashSecret(c))
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.Unauthenticated, "wrong or already used recovery code")
		}
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		var left int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL", userID).Scan(&left); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "user.mfa.recovery.use", Target: userTarget(u), ActorID: u.ID,
			ActorName: u.Username, Details: map[string]any{"left": left}})
	})
}

// VerifyOneTimeCode checks a second factor typed by the user: a TOTP code
// (digits only) or a recovery code. It passes the sign-in throttle first
// and counts failures. It returns the amr value to record.
func (s *Service) VerifyOneTimeCode(ctx context.Context, u User, code, remoteIP string) (string, error) {
	if err := s.CheckSecondFactorThrottle(ctx, u, remoteIP); err != nil {
		return "", err
	}
	code = strings.TrimSpace(code)
	digits := code != "" && strings.Trim(code, "0123456789 ") == ""
	var err error
	factor := "totp code"
	if digits {
		err = s.VerifyTOTP(ctx, u.ID, code)
	} else {
		factor = "recovery code"
		err = s.UseRecoveryCode(ctx, u.ID, code)
	}
	if err != nil {
		if apperr.Is(err, apperr.Unauthenticated) {
			if ferr := s.SecondFactorFailed(ctx, u, remoteIP, factor); ferr != nil {
				return "", ferr
			}
		}
		return "", err
	}
	return AMROTP, nil
}
