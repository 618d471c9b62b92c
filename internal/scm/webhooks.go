package scm

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/events"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
)

// Webhook event names (GitHub's).
const (
	HookPush        = "push"
	HookPullRequest = "pull_request"
)

// WebhookOptions tune delivery.
type WebhookOptions struct {
	// Timeout bounds one delivery attempt (default 10s).
	Timeout time.Duration
	// Backoff is the wait before the first retry; each later retry waits
	// three times longer (default 10s: 10s, 30s, 90s, 4.5m).
	Backoff time.Duration
	// Attempts is the number of tries before a delivery fails (default 5).
	Attempts int
	// Poll is how often the sender looks for due deliveries (default 1s).
	Poll time.Duration
	// Client sends the requests (default: an http.Client with Timeout,
	// following no redirects).
	Client *http.Client
}

// Webhook posts repository events to a URL: for one repository, or for
// every repository of an org (RepoID 0).
type Webhook struct {
	ID        int64
	OrgID     int64
	RepoID    int64
	URL       string
	Events    []string
	Active    bool
	HasSecret bool
	CreatedBy string
	CreatedAt time.Time
}

// Delivery is one event sent (or being sent) to a webhook.
type Delivery struct {
	ID           int64
	WebhookID    int64
	GUID         string
	Event        string
	Payload      string
	State        string // pending, retrying, delivered, failed
	Attempts     int
	NextAttempt  time.Time
	StatusCode   int
	Response     string
	Error        string
	Duration     time.Duration
	RedeliveryOf int64
	CreatedAt    time.Time
	DeliveredAt  time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryRetrying  = "retrying"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

const maxHooksPerTarget = 20

func hookTarget(h Webhook) audit.Target {
	return audit.Target{Type: "webhook", ID: strconv.FormatInt(h.ID, 10), Name: h.URL}
}

// validateHookURL checks a webhook target: http(s), a host, no user info.
func validateHookURL(raw string) error {
	if len(raw) > 2000 {
		return apperr.InvalidField("url", "url must be at most 2000 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return apperr.InvalidField("url", "url must be an absolute http:// or https:// URL")
	}
	if u.User != nil {
		return apperr.InvalidField("url", "url must not carry a user or password; sign deliveries with a secret instead")
	}
	if u.Fragment != "" {
		return apperr.InvalidField("url", "url must not have a fragment")
	}
	return nil
}

func normalizeHookEvents(evs []string) ([]string, error) {
	if len(evs) == 0 {
		return []string{HookPush, HookPullRequest}, nil
	}
	var out []string
	for _, e := range evs {
		switch e {
		case HookPush, HookPullRequest:
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		default:
			return nil, apperr.InvalidField("events", "unknown event %q (want push or pull_request)", clip(e, 40))
		}
	}
	return out, nil
}

const webhookAAD = "scm.webhook.secret"

// NewWebhook describes a webhook to create.
type NewWebhook struct {
	URL    string
	Secret string
	Events []string
}

// CreateWebhook adds a webhook to org o, for repository r (nil: every
// repository of the org).
func (s *Service) CreateWebhook(ctx context.Context, o identity.Org, r *Repo, nh NewWebhook) (Webhook, error) {
	if err := validateHookURL(nh.URL); err != nil {
		return Webhook{}, err
	}
	if len(nh.Secret) > 256 {
		return Webhook{}, apperr.InvalidField("secret", "secret must be at most 256 bytes")
	}
	evs, err := normalizeHookEvents(nh.Events)
	if err != nil {
		return Webhook{}, err
	}
	h := Webhook{OrgID: o.ID, URL: nh.URL, Events: evs, Active: true, HasSecret: nh.Secret != "", CreatedBy: actorName(ctx)}
	var repoID any
	target := audit.Target{}
	if r != nil {
		h.RepoID, repoID = r.ID, r.ID
	}
	var sealed []byte
	if nh.Secret != "" {
		if sealed, err = s.ids.Sealer().Seal([]byte(nh.Secret), webhookAAD); err != nil {
			return Webhook{}, err
		}
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM webhooks WHERE org_id = ? AND COALESCE(repo_id, 0) = ?", o.ID, h.RepoID).Scan(&n); err != nil {
			return err
		}
		if n >= maxHooksPerTarget {
			return apperr.E(apperr.Invalid, "at most %d webhooks per repository or org", maxHooksPerTarget)
		}
		now := s.now()
		if err := tx.QueryRow(ctx, `INSERT INTO webhooks (org_id, repo_id, url, secret, events, active, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, TRUE, ?, ?) RETURNING id`, o.ID, repoID, h.URL, sealed, strings.Join(evs, ","), h.CreatedBy,
			store.Time(now)).Scan(&h.ID); err != nil {
			return err
		}
		h.CreatedAt = now.UTC().Truncate(time.Microsecond)
		target = hookTarget(h)
		details := map[string]any{"events": evs, "has_secret": h.HasSecret, "org": o.Name}
		if r != nil {
			details["repo"] = r.FullName()
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "webhook.create", OrgID: o.ID, Target: target, Details: details})
	})
	return h, err
}

const selectHook = "SELECT id, org_id, COALESCE(repo_id, 0), url, secret, events, active, created_by, created_at FROM webhooks"

func scanHook(r interface{ Scan(...any) error }) (Webhook, []byte, error) {
	var (
		h      Webhook
		secret []byte
		evs    string
	)
	err := r.Scan(&h.ID, &h.OrgID, &h.RepoID, &h.URL, &secret, &evs, &h.Active, &h.CreatedBy, store.TimeDest(&h.CreatedAt))
	h.Events = strings.Split(evs, ",")
	h.HasSecret = len(secret) > 0
	return h, secret, err
}

// Webhooks lists the webhooks of org o: those of repository r, or the
// org-wide ones when r is nil.
func (s *Service) Webhooks(ctx context.Context, o identity.Org, r *Repo) ([]Webhook, error) {
	var repoID int64
	if r != nil {
		repoID = r.ID
	}
	rows, err := s.db.Query(ctx, selectHook+" WHERE org_id = ? AND COALESCE(repo_id, 0) = ? ORDER BY id", o.ID, repoID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Webhook
	for rows.Next() {
		h, _, err := scanHook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// Webhook returns one webhook of org o (of repository r, or org-wide).
func (s *Service) Webhook(ctx context.Context, o identity.Org, r *Repo, id int64) (Webhook, error) {
	var repoID int64
	if r != nil {
		repoID = r.ID
	}
	h, _, err := scanHook(s.db.QueryRow(ctx, selectHook+" WHERE id = ? AND org_id = ? AND COALESCE(repo_id, 0) = ?", id, o.ID, repoID))
	if apperr.Is(err, apperr.NotFound) {
		return h, apperr.E(apperr.NotFound, "webhook %d not found", id)
	}
	return h, err
}

// DeleteWebhook removes a webhook and its delivery log.
func (s *Service) DeleteWebhook(ctx context.Context, h Webhook) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM webhook_deliveries WHERE webhook_id = ?", h.ID); err != nil {
			return err
		}
		n, err := tx.Exec(ctx, "DELETE FROM webhooks WHERE id = ?", h.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return apperr.E(apperr.NotFound, "webhook %d not found", h.ID)
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "webhook.delete", OrgID: h.OrgID, Target: hookTarget(h)})
	})
}

const selectDelivery = `SELECT id, webhook_id, guid, event, payload, state, attempts, next_attempt_at, status_code, response, error,
	duration_ms, COALESCE(redelivery_of, 0), created_at, delivered_at FROM webhook_deliveries`

func scanDelivery(r interface{ Scan(...any) error }) (Delivery, error) {
	var (
		d          Delivery
		attempts   int64
		code, durr int64
	)
	err := r.Scan(&d.ID, &d.WebhookID, &d.GUID, &d.Event, &d.Payload, &d.State, &attempts, store.TimeDest(&d.NextAttempt), &code,
		&d.Response, &d.Error, &durr, &d.RedeliveryOf, store.TimeDest(&d.CreatedAt), store.TimeDest(&d.DeliveredAt))
	d.Attempts, d.StatusCode, d.Duration = int(attempts), int(code), time.Duration(durr)*time.Millisecond
	return d, err
}

// Deliveries lists a webhook's deliveries, newest first.
func (s *Service) Deliveries(ctx context.Context, h Webhook, limit int) ([]Delivery, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	rows, err := s.db.Query(ctx, selectDelivery+" WHERE webhook_id = ? ORDER BY id DESC LIMIT "+strconv.Itoa(limit), h.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Delivery returns one delivery of h.
func (s *Service) Delivery(ctx context.Context, h Webhook, id int64) (Delivery, error) {
	d, err := scanDelivery(s.db.QueryRow(ctx, selectDelivery+" WHERE id = ? AND webhook_id = ?", id, h.ID))
	if apperr.Is(err, apperr.NotFound) {
		return d, apperr.E(apperr.NotFound, "delivery %d not found", id)
	}
	return d, err
}

// Redeliver sends a delivery's payload again (same delivery GUID, as
// GitHub does), as a new entry of the log.
func (s *Service) Redeliver(ctx context.Context, h Webhook, d Delivery) (Delivery, error) {
	nd := Delivery{WebhookID: h.ID, GUID: d.GUID, Event: d.Event, Payload: d.Payload, State: DeliveryPending, RedeliveryOf: d.ID}
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		nd.CreatedAt, nd.NextAttempt = now.UTC().Truncate(time.Microsecond), now.UTC().Truncate(time.Microsecond)
		if err := tx.QueryRow(ctx, `INSERT INTO webhook_deliveries (webhook_id, guid, event, payload, state, next_attempt_at, redelivery_of, created_at)
			VALUES (?, ?, ?, ?, 'pending', ?, ?, ?) RETURNING id`, h.ID, d.GUID, d.Event, d.Payload, store.Time(now), d.ID, store.Time(now)).Scan(&nd.ID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "webhook.redeliver", OrgID: h.OrgID, Target: hookTarget(h),
			Details: map[string]any{"delivery": d.ID, "guid": d.GUID}})
	})
	s.hooks.wake()
	return nd, err
}

// webhookSender turns events into deliveries and sends them.
type webhookSender struct {
	s        *Service
	timeout  time.Duration
	backoff  time.Duration
	attempts int
	poll     time.Duration
	client   *http.Client
	wakeCh   chan struct{}
}

func newWebhookSender(s *Service, o WebhookOptions) *webhookSender {
	w := &webhookSender{s: s, timeout: o.Timeout, backoff: o.Backoff, attempts: o.Attempts, poll: o.Poll, client: o.Client,
		wakeCh: make(chan struct{}, 1)}
	if w.timeout <= 0 {
		w.timeout = 10 * time.Second
	}
	if w.backoff <= 0 {
		w.backoff = 10 * time.Second
	}
	if w.attempts <= 0 {
		w.attempts = 5
	}
	if w.poll <= 0 {
		w.poll = time.Second
	}
	if w.client == nil {
		w.client = &http.Client{Timeout: w.timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return w
}

func (w *webhookSender) wake() {
	select {
	case w.wakeCh <- struct{}{}:
	default:
	}
}

// enqueue is the event subscriber: one delivery per matching webhook.
// Re-delivered events create no duplicates (unique per webhook and event).
func (w *webhookSender) enqueue(ctx context.Context, e events.Event) error {
	s := w.s
	var repoID int64
	var hookEvent string
	switch e.Type {
	case EventPush:
		var p PushEvent
		if err := e.Decode(&p); err != nil {
			return nil // a malformed event cannot get better by retrying
		}
		repoID, hookEvent = p.RepoID, HookPush
	case EventPullRequest:
		var p PullEvent
		if err := e.Decode(&p); err != nil {
			return nil
		}
		repoID, hookEvent = p.RepoID, HookPullRequest
	default:
		return nil
	}
	r, err := s.RepoByID(ctx, repoID)
	if apperr.Is(err, apperr.NotFound) {
		return nil // deleted since
	}
	if err != nil {
		return err
	}
	rows, err := s.db.Query(ctx, selectHook+" WHERE org_id = ? AND (repo_id IS NULL OR repo_id = ?) AND active = TRUE ORDER BY id", r.OrgID, r.ID)
	if err != nil {
		return err
	}
	var hooks []Webhook
	for rows.Next() {
		h, _, err := scanHook(rows)
		if err != nil {
			rows.Close()
			return err
		}
		if slices.Contains(h.Events, hookEvent) {
			hooks = append(hooks, h)
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if len(hooks) == 0 {
		return nil
	}
	payload, err := s.githubPayload(ctx, r, e)
	if err != nil {
		return err
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		for _, h := range hooks {
			if _, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (webhook_id, guid, event, payload, state, next_attempt_at, event_seq, created_at)
				VALUES (?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (webhook_id, event_seq) DO NOTHING`,
				h.ID, newGUID(), hookEvent, string(payload), store.Time(now), e.Seq, store.Time(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		w.wake()
	}
	return err
}

func newGUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// run sends due deliveries until ctx ends.
func (w *webhookSender) run(ctx context.Context) error {
	for {
		for {
			n, err := w.sendDue(ctx)
			if err != nil && ctx.Err() == nil {
				w.s.log.WarnContext(ctx, "webhook deliveries", "err", err)
			}
			if n == 0 || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.wakeCh:
		case <-time.After(w.poll):
		}
	}
}

// sendDue sends up to a batch of due deliveries, several at a time.
func (w *webhookSender) sendDue(ctx context.Context) (int, error) {
	s := w.s
	now := s.now()
	rows, err := s.db.Query(ctx, selectDelivery+" WHERE state IN ('pending', 'retrying') AND next_attempt_at <= ? ORDER BY id LIMIT 16", store.Time(now))
	if err != nil {
		return 0, err
	}
	var due []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			rows.Close()
			return 0, err
		}
		due = append(due, d)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	// Claim: push the next attempt past this one's deadline, so another
	// replica (or a restart) retries it only if this attempt is lost.
	var claimed []Delivery
	for _, d := range due {
		lease := now.Add(2 * w.timeout)
		n, err := s.db.Exec(ctx, "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ? AND next_attempt_at = ? AND state = ?",
			store.Time(lease), d.ID, store.Time(d.NextAttempt), d.State)
		if err != nil {
			return 0, err
		}
		if n == 1 {
			claimed = append(claimed, d)
		}
	}
	done := make(chan struct{}, len(claimed))
	for _, d := range claimed {
		go func() {
			defer func() { done <- struct{}{} }()
			w.attempt(ctx, d)
		}()
	}
	for range claimed {
		<-done
	}
	return len(claimed), nil
}

// attempt sends one delivery and records the outcome.
func (w *webhookSender) attempt(ctx context.Context, d Delivery) {
	s := w.s
	h, secret, err := scanHook(s.db.QueryRow(ctx, selectHook+" WHERE id = ?", d.WebhookID))
	if err != nil {
		return // deleted: its deliveries went with it
	}
	var key []byte
	if len(secret) > 0 {
		if key, err = s.ids.Sealer().Open(secret, webhookAAD); err != nil {
			s.log.ErrorContext(ctx, "open webhook secret", "webhook", h.ID, "err", err)
			return
		}
	}
	start := time.Now()
	code, resp, sendErr := w.post(ctx, h, d, key)
	dur := time.Since(start)
	d.Attempts++
	state, next := DeliveryDelivered, s.now()
	errText := ""
	if sendErr != nil || code < 200 || code > 299 {
		errText = fmt.Sprintf("HTTP %d", code)
		if sendErr != nil {
			errText = sendErr.Error()
		}
		if d.Attempts >= w.attempts {
			state = DeliveryFailed
		} else {
			state = DeliveryRetrying
			wait := w.backoff
			for i := 1; i < d.Attempts; i++ {
				wait *= 3
			}
			next = next.Add(wait)
		}
	}
	var delivered any
	if state == DeliveryDelivered {
		delivered = store.Time(s.now())
	}
	if _, err := s.db.Exec(context.WithoutCancel(ctx), `UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = ?,
		status_code = ?, response = ?, error = ?, duration_ms = ?, delivered_at = ? WHERE id = ?`,
		state, d.Attempts, store.Time(next), code, resp, clip(errText, 500), dur.Milliseconds(), delivered, d.ID); err != nil {
		s.log.ErrorContext(ctx, "record webhook delivery", "delivery", d.ID, "err", err)
	}
}

// post makes one HTTP request; resp is the start of the response body.
func (w *webhookSender) post(ctx context.Context, h Webhook, d Delivery, key []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	body := []byte(d.Payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", errors.New("invalid webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Rampart-Hookshot/1")
	req.Header.Set("X-GitHub-Event", d.Event)
	req.Header.Set("X-GitHub-Delivery", d.GUID)
	req.Header.Set("X-GitHub-Hook-ID", strconv.FormatInt(h.ID, 10))
	if len(key) > 0 {
		req.Header.Set("X-Hub-Signature-256", Sign(key, body))
	}
	res, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, "", fmt.Errorf("timed out after %s", w.timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	return res.StatusCode, strings.ToValidUTF8(string(b), "?"), nil
}

// Sign returns the X-Hub-Signature-256 value of body under key:
// "sha256=" and the hex HMAC-SHA256.
func Sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks an X-Hub-Signature-256 header in constant time.
func VerifySignature(key, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(key, body)), []byte(header))
}

// Wire types of GitHub-compatible payloads.
type (
	ghUser struct {
		Login string `json:"login"`
		ID    int64  `json:"id,omitempty"`
	}
	ghRepo struct {
		ID            int64  `json:"id"`
		Name          string `json:"name"`
		FullName      string `json:"full_name"`
		Private       bool   `json:"private"`
		HTMLURL       string `json:"html_url"`
		CloneURL      string `json:"clone_url"`
		SSHURL        string `json:"ssh_url,omitempty"`
		DefaultBranch string `json:"default_branch"`
		Owner         ghUser `json:"owner"`
	}
	ghPerson struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	}
	ghCommit struct {
		ID        string   `json:"id"`
		Message   string   `json:"message"`
		Timestamp string   `json:"timestamp"`
		URL       string   `json:"url"`
		Author    ghPerson `json:"author"`
		Committer ghPerson `json:"committer"`
		Distinct  bool     `json:"distinct"`
	}
	ghPush struct {
		Ref        string     `json:"ref"`
		Before     string     `json:"before"`
		After      string     `json:"after"`
		Created    bool       `json:"created"`
		Deleted    bool       `json:"deleted"`
		Forced     bool       `json:"forced"`
		Compare    string     `json:"compare"`
		Commits    []ghCommit `json:"commits"`
		HeadCommit *ghCommit  `json:"head_commit"`
		Repository ghRepo     `json:"repository"`
		Pusher     ghPerson   `json:"pusher"`
		Sender     ghUser     `json:"sender"`
	}
	ghBranch struct {
		Ref  string `json:"ref"`
		SHA  string `json:"sha"`
		Repo ghRepo `json:"repo"`
	}
	ghPull struct {
		Number         int64    `json:"number"`
		State          string   `json:"state"`
		Title          string   `json:"title"`
		Body           string   `json:"body"`
		HTMLURL        string   `json:"html_url"`
		User           ghUser   `json:"user"`
		Head           ghBranch `json:"head"`
		Base           ghBranch `json:"base"`
		Merged         bool     `json:"merged"`
		MergeCommitSHA *string  `json:"merge_commit_sha"`
	}
	ghPullEvent struct {
		Action      string `json:"action"`
		Number      int64  `json:"number"`
		PullRequest ghPull `json:"pull_request"`
		Repository  ghRepo `json:"repository"`
		Sender      ghUser `json:"sender"`
	}
)

func (s *Service) ghRepo(r Repo) ghRepo {
	h, sh := s.CloneURLs(r)
	return ghRepo{ID: r.ID, Name: r.Name, FullName: r.FullName(), Private: !r.Public, HTMLURL: s.WebURL(r), CloneURL: h, SSHURL: sh,
		DefaultBranch: r.DefaultBranch, Owner: ghUser{Login: r.Org, ID: r.OrgID}}
}

// githubPayload turns an scm event into GitHub's webhook payload.
func (s *Service) githubPayload(ctx context.Context, r Repo, e events.Event) ([]byte, error) {
	switch e.Type {
	case EventPush:
		var p PushEvent
		if err := e.Decode(&p); err != nil {
			return nil, err
		}
		out := ghPush{Ref: p.Ref, Before: p.Before, After: p.After, Created: isZero(p.Before), Deleted: isZero(p.After),
			Compare: s.WebURL(r) + "/compare/" + short(p.Before) + "..." + short(p.After), Repository: s.ghRepo(r),
			Pusher: ghPerson{Name: p.Pusher}, Sender: ghUser{Login: p.Pusher}, Commits: []ghCommit{}}
		if u, err := s.ids.UserByName(ctx, p.Pusher); err == nil {
			out.Pusher.Email, out.Sender.ID = u.Email, u.ID
		}
		for _, c := range p.Commits {
			gc := ghCommit{ID: c.ID, Message: c.Message, Timestamp: c.Timestamp.Format(time.RFC3339), URL: s.WebURL(r) + "/commit/" + c.ID,
				Author: ghPerson{Name: c.AuthorName, Email: c.AuthorEmail}, Committer: ghPerson{Name: c.AuthorName, Email: c.AuthorEmail}, Distinct: true}
			out.Commits = append(out.Commits, gc)
		}
		if n := len(out.Commits); n > 0 {
			out.HeadCommit = &out.Commits[n-1]
		}
		return json.Marshal(out)
	case EventPullRequest:
		var p PullEvent
		if err := e.Decode(&p); err != nil {
			return nil, err
		}
		action, state := p.Action, "open"
		switch p.Action {
		case ActionSynchronized:
			action = "synchronize"
		case ActionMerged:
			action, state = "closed", "closed"
		case ActionClosed:
			state = "closed"
		}
		gr := s.ghRepo(r)
		pull := ghPull{Number: p.Number, State: state, Title: p.Title, Body: p.Body, HTMLURL: p.URL, User: ghUser{Login: p.Author},
			Head: ghBranch{Ref: p.Head, SHA: p.HeadSHA, Repo: gr}, Base: ghBranch{Ref: p.Base, Repo: gr}, Merged: p.Action == ActionMerged}
		if p.MergeCommit != "" {
			mc := p.MergeCommit
			pull.MergeCommitSHA = &mc
		}
		return json.Marshal(ghPullEvent{Action: action, Number: p.Number, PullRequest: pull, Repository: gr, Sender: ghUser{Login: p.Sender}})
	}
	return nil, fmt.Errorf("no webhook payload for %s", e.Type)
}
