package identity

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"image/png"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// TOTP parameters: what every authenticator app understands (RFC 6238
// defaults: HMAC-SHA1, 6 digits, 30-second steps), with one step of clock
// skew accepted either side.
const (
	totpPeriod  = 30
	totpDigits  = otp.DigitsSix
	totpSkew    = 1
	totpSeedLen = 20 // 160 bits, as RFC 4226 recommends
)

// TOTPEnrolment is what a user needs to add Rampart to an authenticator app.
type TOTPEnrolment struct {
	// Secret is the base32 seed, for typing in by hand.
	Secret string
	// URI is the otpauth:// URI the QR code encodes.
	URI string
	// QRCode is a PNG image of URI.
	QRCode []byte
}

func totpAAD(userID int64) string { return "totp:user:" + strconv.FormatInt(userID, 10) }

// BeginTOTP starts TOTP enrolment: a fresh seed is stored unconfirmed until
// ConfirmTOTP sees a code made from it. issuer names Rampart in the app.
func (s *Service) BeginTOTP(ctx context.Context, userID int64, issuer string) (TOTPEnrolment, error) {
	u, err := s.User(ctx, userID)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	st, err := s.MFAStatus(ctx, userID)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	if st.TOTP {
		return TOTPEnrolment{}, apperr.E(apperr.Conflict, "an authenticator app is already enrolled; remove it first")
	}
	seed := make([]byte, totpSeedLen)
	if _, err := io.ReadFull(s.rand, seed); err != nil {
		return TOTPEnrolment{}, err
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: u.Username, Period: totpPeriod, Digits: totpDigits,
		Algorithm: otp.AlgorithmSHA1, Secret: seed,
	})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("generate totp key: %w", err)
	}
	sealed, err := s.sealer.Seal([]byte(key.Secret()), totpAAD(userID))
	if err != nil {
		return TOTPEnrolment{}, err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO totp_secrets (user_id, secret, confirmed, last_step, created_at) VALUES (?, ?, FALSE, 0, ?)
		ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, confirmed = FALSE, last_step = 0, created_at = excluded.created_at`,
		userID, sealed, store.Time(s.now()))
	if err != nil {
		return TOTPEnrolment{}, err
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("render qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return TOTPEnrolment{}, err
	}
	return TOTPEnrolment{Secret: key.Secret(), URI: key.URL(), QRCode: buf.Bytes()}, nil
}

// ConfirmTOTP completes enrolment with a code from the app. It returns new
// recovery codes when the user had none left (shown once).
func (s *Service) ConfirmTOTP(ctx context.Context, userID int64, code string) ([]string, error) {
	var codes []string
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		secret, confirmed, last, err := s.loadTOTP(ctx, tx, userID)
		if apperr.Is(err, apperr.NotFound) {
			return apperr.E(apperr.Invalid, "start enrolment first")
		}
		if err != nil {
			return err
		}
		if confirmed {
			return apperr.E(apperr.Conflict, "an authenticator app is already enrolled")
		}
		step, ok := matchTOTP(secret, code, s.now(), last)
		if !ok {
			return apperr.InvalidField("code", "that code does not match; check the time on your device and try the next code")
		}
		if _, err := tx.Exec(ctx, "UPDATE totp_secrets SET confirmed = TRUE, last_step = ? WHERE user_id = ?", step, userID); err != nil {
			return err
		}
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		st, err := mfaStatus(ctx, tx, userID)
		if err != nil {
			return err
		}
		if st.RecoveryLeft == 0 {
			if codes, err = s.newRecoveryCodesTx(ctx, tx, userID); err != nil {
				return err
			}
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "user.mfa.totp.enrol", Target: userTarget(u)})
	})
	return codes, err
}

// VerifyTOTP checks a code from the user's app. A code is accepted once:
// its time step must be later than the last one used, so a code seen over a
// shoulder cannot be replayed within its window.
func (s *Service) VerifyTOTP(ctx context.Context, userID int64, code string) error {
	secret, confirmed, last, err := s.loadTOTP(ctx, s.db, userID)
	if err != nil || !confirmed {
		return apperr.E(apperr.Unauthenticated, "no authenticator app is enrolled")
	}
	step, ok := matchTOTP(secret, code, s.now(), last)
	if !ok {
		return apperr.E(apperr.Unauthenticated, "wrong or already used code")
	}
	// Compare-and-set: of two requests with the same code, one wins.
	n, err := s.db.Exec(ctx, "UPDATE totp_secrets SET last_step = ? WHERE user_id = ? AND last_step < ?", step, userID, step)
	if err != nil {
		return err
	}
	if n == 0 {
		return apperr.E(apperr.Unauthenticated, "wrong or already used code")
	}
	return nil
}

// RemoveTOTP removes the user's authenticator app.
func (s *Service) RemoveTOTP(ctx context.Context, userID int64) error {
	return s.writeTx(ctx, func(tx *store.Tx) error {
		n, err := tx.Exec(ctx, "DELETE FROM totp_secrets WHERE user_id = ? AND confirmed = TRUE", userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.NotFound, "no authenticator app is enrolled")
		}
		u, err := scanUser(tx.QueryRow(ctx, selectUser+" WHERE id = ?", userID))
		if err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "user.mfa.totp.remove", Target: userTarget(u)})
	})
}

func (s *Service) loadTOTP(ctx context.Context, q store.Querier, userID int64) (secret string, confirmed bool, lastStep int64, err error) {
	var sealed []byte
	err = q.QueryRow(ctx, "SELECT secret, confirmed, last_step FROM totp_secrets WHERE user_id = ?", userID).Scan(&sealed, &confirmed, &lastStep)
	if err != nil {
		return "", false, 0, err
	}
	pt, err := s.sealer.Open(sealed, totpAAD(userID))
	if err != nil {
		return "", false, 0, fmt.Errorf("open totp seed of user %d: %w", userID, err)
	}
	return string(pt), confirmed, lastStep, nil
}

// matchTOTP finds the time step within the skew window whose code equals
// code and that is later than lastStep.
func matchTOTP(secret, code string, now time.Time, lastStep int64) (int64, bool) {
	code = strings.TrimSpace(strings.ReplaceAll(code, " ", ""))
	if len(code) != totpDigits.Length() {
		return 0, false
	}
	cur := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		step := cur + d
		if step <= lastStep {
			continue
		}
		want, err := totpCode(secret, step, otp.AlgorithmSHA1, totpDigits)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// totpCode computes the RFC 6238 code of a base32 secret at a time step.
func totpCode(secret string, step int64, alg otp.Algorithm, digits otp.Digits) (string, error) {
	return totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totp.ValidateOpts{
		Period: totpPeriod, Digits: digits, Algorithm: alg,
	})
}
