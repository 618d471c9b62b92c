package oidcop

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
)

// Device authorization states.
const (
	devicePending  = "pending"
	deviceApproved = "approved"
	deviceDenied   = "denied"
)

// userCodeLen is the number of characters of a user code (op.UserCodeBase20
// groups them 4-4).
const userCodeLen = 8

// NormalizeUserCode turns what a user typed ("bcdf ghjk", "BCDF-GHJK")
// into the stored form, or reports that it cannot be a user code.
func NormalizeUserCode(s string) (string, error) {
	if len(s) > 64 {
		return "", apperr.InvalidField("user_code", "that is not a code shown by a device")
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case strings.ContainsRune(op.CharSetBase20, r):
			b.WriteRune(r)
		default:
			return "", apperr.InvalidField("user_code", "a code has only the letters %s", op.CharSetBase20)
		}
	}
	c := b.String()
	if len(c) != userCodeLen {
		return "", apperr.InvalidField("user_code", "a code has %d letters, like BCDF-GHJK", userCodeLen)
	}
	return c[:4] + "-" + c[4:], nil
}

// storeDeviceAuthorization records a new device authorization request;
// scopes are cut down to what the client may receive.
func (p *Provider) storeDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	c, _, err := p.client(ctx, clientID)
	if err != nil {
		return err
	}
	now := p.now().UTC().Truncate(time.Microsecond)
	return p.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM oidc_device_authorizations WHERE user_code = ? AND expires_at < ?", userCode, store.Time(now)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO oidc_device_authorizations (device_code_hash, user_code, client_id, scopes, state, created_at,
			expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`, hashSecret(deviceCode), userCode, c.ID, strings.Join(c.allowedScopes(scopes), " "),
			devicePending, store.Time(now), store.Time(expires))
		if apperr.Is(err, apperr.Conflict) {
			return op.ErrDuplicateUserCode
		}
		return err
	})
}

// errPollTooFast makes the library answer slow_down: it maps a storage
// error wrapping context.DeadlineExceeded to that error code.
var errPollTooFast = fmt.Errorf("device polled faster than its interval: %w", context.DeadlineExceeded)

// deviceState answers a device's poll. An approved or denied
// authorization is answered once and then deleted: a device code yields
// tokens only once.
func (p *Provider) deviceState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	if deviceCode == "" || len(deviceCode) > 128 {
		return nil, apperr.E(apperr.NotFound, "unknown device code")
	}
	var st *op.DeviceAuthorizationState
	tooFast := false
	err := p.db.Tx(ctx, func(tx *store.Tx) error {
		st, tooFast = nil, false
		var (
			scopes, state, amr string
			uid                *int64
			lastPoll, authTime time.Time
			expires            time.Time
		)
		err := tx.QueryRow(ctx, `SELECT scopes, state, user_id, amr, auth_time, last_poll_at, expires_at FROM oidc_device_authorizations
			WHERE device_code_hash = ? AND client_id = ?`, hashSecret(deviceCode), clientID).
			Scan(&scopes, &state, &uid, &amr, store.TimeDest(&authTime), store.TimeDest(&lastPoll), store.TimeDest(&expires))
		if err != nil {
			return err
		}
		now := p.now()
		st = &op.DeviceAuthorizationState{ClientID: clientID, Scopes: strings.Fields(scopes), Expires: expires}
		switch state {
		case deviceApproved:
			st.Done = true
			st.AMR, st.AuthTime = strings.Fields(amr), authTime
			if uid != nil {
				st.Subject = fmt.Sprint(*uid)
			}
		case deviceDenied:
			st.Denied = true
		default:
			if !lastPoll.IsZero() && now.Sub(lastPoll) < p.poll*4/5 {
				tooFast = true
			}
			_, err := tx.Exec(ctx, "UPDATE oidc_device_authorizations SET last_poll_at = ? WHERE device_code_hash = ?", store.Time(now), hashSecret(deviceCode))
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM oidc_device_authorizations WHERE device_code_hash = ?", hashSecret(deviceCode))
		return err
	})
	if err != nil {
		return nil, err
	}
	if tooFast {
		return nil, errPollTooFast
	}
	return st, nil
}

// DeviceRequest is a pending device authorization as the approval page
// shows it.
type DeviceRequest struct {
	UserCode   string
	ClientID   string
	ClientName string
	Scopes     []string
	ExpiresAt  time.Time
}

// PendingDevice looks up a pending device authorization by the code the
// user typed.
func (p *Provider) PendingDevice(ctx context.Context, userCode string) (DeviceRequest, error) {
	code, err := NormalizeUserCode(userCode)
	if err != nil {
		return DeviceRequest{}, err
	}
	var (
		d      DeviceRequest
		scopes string
	)
	err = p.db.QueryRow(ctx, `SELECT d.user_code, d.client_id, c.name, d.scopes, d.expires_at FROM oidc_device_authorizations d
		JOIN oidc_clients c ON c.id = d.client_id WHERE d.user_code = ? AND d.state = ? AND d.expires_at > ?`,
		code, devicePending, store.Time(p.now())).Scan(&d.UserCode, &d.ClientID, &d.ClientName, &scopes, store.TimeDest(&d.ExpiresAt))
	if apperr.Is(err, apperr.NotFound) {
		return DeviceRequest{}, &apperr.Error{Kind: apperr.NotFound, Field: "user_code",
			Msg: "no device is waiting for that code; it may have expired — start again on the device"}
	}
	d.Scopes = strings.Fields(scopes)
	return d, err
}

// DecideDevice approves or denies a pending device authorization as the
// user of an active browser session. Approval records the session's
// authentication methods and sign-in time for the ID token.
func (p *Provider) DecideDevice(ctx context.Context, userCode string, approve bool, u identity.User, sess identity.Session) error {
	if sess.State != identity.SessionActive || sess.UserID != u.ID {
		return apperr.E(apperr.Unauthenticated, "sign in first")
	}
	d, err := p.PendingDevice(ctx, userCode)
	if err != nil {
		return err
	}
	state, action := deviceDenied, "oidc.device.deny"
	if approve {
		state, action = deviceApproved, "oidc.device.approve"
	}
	return p.db.Tx(ctx, func(tx *store.Tx) error {
		n, err := tx.Exec(ctx, `UPDATE oidc_device_authorizations SET state = ?, user_id = ?, amr = ?, auth_time = ?
			WHERE user_code = ? AND state = ? AND expires_at > ?`, state, u.ID, strings.Join(amrOf(sess), " "), store.Time(sess.AuthTime),
			d.UserCode, devicePending, store.Time(p.now()))
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.Conflict, "that code was already used or has expired")
		}
		rec := audit.Record{Action: action, Target: audit.Target{Type: "oidc_client", ID: d.ClientID, Name: d.ClientName},
			Details: map[string]any{"user": u.Username, "scopes": d.Scopes}}
		if !approve {
			rec.Outcome = audit.Denied
		}
		return p.audit.AppendTx(ctx, tx, rec)
	})
}
