package audit

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the audit schema.
var Migrations = store.EmbeddedMigrations("audit", migrationFS, "migrations")

// Outcomes of an action.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// Entry is one audit record.
type Entry struct {
	Seq        int64          `json:"seq"`
	At         time.Time      `json:"at"`
	ActorID    int64          `json:"actor_id,omitempty"`
	ActorName  string         `json:"actor"`
	Action     string         `json:"action"`
	Outcome    string         `json:"outcome"`
	TargetType string         `json:"target_type"`
	TargetID   string         `json:"target_id"`
	TargetName string         `json:"target_name,omitempty"`
	OrgID      int64          `json:"org_id,omitempty"`
	SourceIP   string         `json:"source_ip"`
	UserAgent  string         `json:"user_agent,omitempty"`
	RequestID  string         `json:"request_id"`
	Details    map[string]any `json:"details,omitempty"`
	PrevHash   string         `json:"prev_hash"`
	Hash       string         `json:"hash"`
}

// Target names what an action was done to.
type Target struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Log is the audit log.
type Log struct {
	db  *store.DB
	now func() time.Time

	mu       sync.Mutex
	journals []*Journal // open in this process (OpenJournal)
}

// New returns the audit log stored in db. now may be nil (time.Now).
func New(db *store.DB, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{db: db, now: now}
}

// Record describes an action to append; the actor, source IP, user agent
// and request id come from the request context unless set here.
type Record struct {
	Action    string         `json:"action"`
	Outcome   string         `json:"outcome,omitempty"` // Success when empty
	Target    Target         `json:"target"`
	OrgID     int64          `json:"org_id,omitempty"`
	Details   map[string]any `json:"details,omitempty"`
	ActorID   int64          `json:"actor_id,omitempty"`
	ActorName string         `json:"actor,omitempty"`
	// At is when the action happened (zero: when the entry is appended).
	At time.Time `json:"at,omitzero"`
	// SourceIP, UserAgent and RequestID override the request context's.
	SourceIP  string `json:"source_ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Append appends r in its own transaction.
func (l *Log) Append(ctx context.Context, r Record) error {
	return l.db.Tx(ctx, func(tx *store.Tx) error { return l.AppendTx(ctx, tx, r) })
}

// AppendTx appends r inside the caller's transaction, so the action and its
// audit entry commit together.
func (l *Log) AppendTx(ctx context.Context, tx *store.Tx, r Record) error {
	return l.AppendEachTx(ctx, tx, Pending{Ctx: ctx, Record: r})
}

// Pending is a record to append and the context of the request it
// belongs to (its actor, source IP, user agent and request id).
type Pending struct {
	Ctx    context.Context
	Record Record
	// details, when set, is Record.Details already encoded as
	// canonicalDetails encodes them (the journal's entries).
	details string
}

// AppendEachTx appends records in order inside the caller's transaction,
// reading and moving the chain's head once for all of them: what a group
// commit of many requests' entries costs per entry is then one insert.
// Nothing is written when any record is invalid. ctx is the statements'
// context (a group committer passes one no request can cancel).
func (l *Log) AppendEachTx(ctx context.Context, tx *store.Tx, recs ...Pending) error {
	if len(recs) == 0 {
		return nil
	}
	entries := make([]Entry, len(recs))
	details := make([]string, len(recs))
	at := l.now().UTC().Truncate(time.Microsecond)
	for i, p := range recs {
		if p.Record.Action == "" {
			return fmt.Errorf("audit: record without action")
		}
		entries[i] = entryFor(p.Ctx, p.Record, at)
		d := p.details
		if d == "" {
			var err error
			if d, err = canonicalDetails(p.Record.Details); err != nil {
				return err
			}
		}
		details[i] = d
	}
	q := "SELECT seq, hash FROM audit_head WHERE id = 1"
	if tx.Dialect() == store.Postgres {
		q += " FOR UPDATE"
	}
	var seq int64
	var prev string
	if err := tx.QueryRow(ctx, q).Scan(&seq, &prev); err != nil {
		return fmt.Errorf("audit: read head: %w", err)
	}
	for i := range entries {
		e := &entries[i]
		seq++
		e.Seq, e.PrevHash = seq, prev
		e.Hash = hashEntry(e, details[i])
		prev = e.Hash
	}
	// Up to insertRows entries a statement: a statement costs about as
	// much as the rows it inserts, and a journal's batch holds hundreds.
	args := make([]any, 0, min(len(entries), insertRows)*16)
	for start := 0; start < len(entries); start += insertRows {
		chunk := entries[start:min(start+insertRows, len(entries))]
		args = args[:0]
		for i := range chunk {
			e := &chunk[i]
			args = append(args, e.Seq, store.Time(e.At), nullID(e.ActorID), e.ActorName, e.Action, e.Outcome, e.TargetType, e.TargetID,
				e.TargetName, nullID(e.OrgID), e.SourceIP, e.UserAgent, e.RequestID, details[start+i], e.PrevHash, e.Hash)
		}
		if _, err := tx.Exec(ctx, insertStatement(len(chunk)), args...); err != nil {
			return fmt.Errorf("audit: insert entries %d to %d: %w", chunk[0].Seq, chunk[len(chunk)-1].Seq, err)
		}
	}
	if _, err := tx.Exec(ctx, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", seq, prev); err != nil {
		return fmt.Errorf("audit: move head: %w", err)
	}
	return nil
}

// insertRows is the most entries one INSERT statement appends (16
// parameters each, well within SQLite's and PostgreSQL's limits).
const insertRows = 32

// insertStatements are the INSERT statements for 1 to insertRows entries.
var insertStatements = func() []string {
	out := make([]string, insertRows+1)
	var b strings.Builder
	b.WriteString(`INSERT INTO audit_log (seq, at, actor_id, actor_name, action, outcome, target_type, target_id,
		target_name, org_id, source_ip, user_agent, request_id, details, prev_hash, hash) VALUES `)
	for n := 1; n <= insertRows; n++ {
		if n > 1 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		out[n] = b.String()
	}
	return out
}()

func insertStatement(n int) string { return insertStatements[n] }

// entryFor is r as an entry at time at, its actor and request details
// filled in from ctx where r leaves them empty.
func entryFor(ctx context.Context, r Record, at time.Time) Entry {
	r = resolve(ctx, r)
	if !r.At.IsZero() {
		at = r.At.UTC().Truncate(time.Microsecond)
	}
	return Entry{
		At:         at,
		ActorID:    r.ActorID,
		ActorName:  r.ActorName,
		Action:     r.Action,
		Outcome:    r.Outcome,
		TargetType: r.Target.Type,
		TargetID:   r.Target.ID,
		TargetName: r.Target.Name,
		OrgID:      r.OrgID,
		SourceIP:   r.SourceIP,
		UserAgent:  r.UserAgent,
		RequestID:  r.RequestID,
		Details:    r.Details,
	}
}

// resolve fills in what r leaves empty from the request context ctx: the
// actor, source IP, user agent and request id; and the outcome.
func resolve(ctx context.Context, r Record) Record {
	info := reqinfo.From(ctx)
	if r.SourceIP == "" {
		r.SourceIP = info.RemoteIP
	}
	if r.UserAgent == "" {
		r.UserAgent = info.UserAgent
	}
	if r.RequestID == "" {
		r.RequestID = info.RequestID
	}
	if r.ActorID == 0 && r.ActorName == "" {
		r.ActorID, r.ActorName = info.ActorID, info.ActorName
	}
	if r.ActorName == "" {
		r.ActorName = "anonymous"
	}
	if r.Outcome == "" {
		r.Outcome = Success
	}
	// PostgreSQL refuses invalid UTF-8 in text columns, and a journal's
	// entry it refuses holds up every later one. User agents come from
	// clients as sent (and httpmw cuts them at 256 bytes, mid-rune).
	for _, s := range []*string{&r.Action, &r.Outcome, &r.Target.Type, &r.Target.ID, &r.Target.Name,
		&r.ActorName, &r.SourceIP, &r.UserAgent, &r.RequestID} {
		*s = strings.ToValidUTF8(*s, "\uFFFD")
	}
	return r
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// canonicalDetails encodes details as JSON with sorted keys (encoding/json
// sorts map keys), so the hash does not depend on map order.
func canonicalDetails(d map[string]any) (string, error) {
	if len(d) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("audit: encode details: %w", err)
	}
	return string(b), nil
}

// hashEntry hashes every stored field of e in a fixed order, with lengths so
// that no two different entries share an encoding.
func hashEntry(e *Entry, details string) string {
	b := make([]byte, 0, 256+len(details))
	field := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
		b = append(b, ';')
	}
	num := func(n int64) {
		var d [20]byte
		digits := strconv.AppendInt(d[:0], n, 10)
		b = strconv.AppendInt(b, int64(len(digits)), 10)
		b = append(b, ':')
		b = append(b, digits...)
		b = append(b, ';')
	}
	field("rampart-audit-v1")
	num(e.Seq)
	num(e.At.UnixMicro())
	num(e.ActorID)
	field(e.ActorName)
	field(e.Action)
	field(e.Outcome)
	field(e.TargetType)
	field(e.TargetID)
	field(e.TargetName)
	num(e.OrgID)
	field(e.SourceIP)
	field(e.UserAgent)
	field(e.RequestID)
	field(details)
	field(e.PrevHash)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Filter selects entries for List and Export.
type Filter struct {
	OrgID     int64  // 0: all orgs
	ActorName string // exact
	Action    string // prefix, e.g. "user.login"
	Outcome   string
	Since     time.Time
	Until     time.Time
	AfterSeq  int64 // for Export: entries with seq > AfterSeq, oldest first
	BeforeSeq int64 // for List: entries with seq < BeforeSeq, newest first
	Limit     int   // List: default 50, at most 500
}

func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	if f.OrgID != 0 {
		conds, args = append(conds, "org_id = ?"), append(args, f.OrgID)
	}
	if f.ActorName != "" {
		conds, args = append(conds, "actor_name = ?"), append(args, f.ActorName)
	}
	if f.Action != "" {
		conds, args = append(conds, "(action = ? OR action LIKE ? ESCAPE '\\')"), append(args, f.Action, escapeLike(f.Action)+".%")
	}
	if f.Outcome != "" {
		conds, args = append(conds, "outcome = ?"), append(args, f.Outcome)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "at >= ?"), append(args, store.Time(f.Since))
	}
	if !f.Until.IsZero() {
		conds, args = append(conds, "at < ?"), append(args, store.Time(f.Until))
	}
	if f.AfterSeq > 0 {
		conds, args = append(conds, "seq > ?"), append(args, f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		conds, args = append(conds, "seq < ?"), append(args, f.BeforeSeq)
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

const selectEntry = `SELECT seq, at, actor_id, actor_name, action, outcome, target_type, target_id, target_name,
	org_id, source_ip, user_agent, request_id, details, prev_hash, hash FROM audit_log`

func scanEntry(rows *store.Rows) (Entry, string, error) {
	var (
		e              Entry
		actorID, orgID *int64
		details        string
	)
	err := rows.Scan(&e.Seq, store.TimeDest(&e.At), &actorID, &e.ActorName, &e.Action, &e.Outcome, &e.TargetType,
		&e.TargetID, &e.TargetName, &orgID, &e.SourceIP, &e.UserAgent, &e.RequestID, &details, &e.PrevHash, &e.Hash)
	if err != nil {
		return e, "", err
	}
	if actorID != nil {
		e.ActorID = *actorID
	}
	if orgID != nil {
		e.OrgID = *orgID
	}
	if details != "{}" && details != "" {
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			// A corrupt details column is reported by Verify; show it raw here.
			e.Details = map[string]any{"_raw": details}
		}
	}
	return e, details, nil
}

// List returns entries matching f, newest first.
func (l *Log) List(ctx context.Context, f Filter) ([]Entry, error) {
	_ = l.flushJournals(ctx) // a failing commit is logged by its journal; show what is committed
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > 500 {
		f.Limit = 500
	}
	where, args := f.where()
	rows, err := l.db.Query(ctx, selectEntry+where+" ORDER BY seq DESC LIMIT "+strconv.Itoa(f.Limit), args...)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, _, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Export writes entries matching f as JSON lines, oldest first.
func (l *Log) Export(ctx context.Context, w io.Writer, f Filter) (int, error) {
	_ = l.flushJournals(ctx) // a failing commit is logged by its journal; show what is committed
	where, args := f.where()
	rows, err := l.db.Query(ctx, selectEntry+where+" ORDER BY seq", args...)
	if err != nil {
		return 0, fmt.Errorf("audit: export: %w", err)
	}
	defer rows.Close()
	enc := json.NewEncoder(w)
	n := 0
	for rows.Next() {
		e, _, err := scanEntry(rows)
		if err != nil {
			return n, err
		}
		if err := enc.Encode(e); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// Problem is one break in the chain found by Verify.
type Problem struct {
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind"` // edited, deleted, relinked
	Detail string `json:"detail"`
}

// Report is the result of Verify.
type Report struct {
	Entries  int64     `json:"entries"`
	HeadSeq  int64     `json:"head_seq"`
	HeadHash string    `json:"head_hash"`
	Problems []Problem `json:"problems"`
}

// OK reports whether the chain is intact.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Verify walks the whole chain and reports every edited, deleted or
// re-linked entry.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	_ = l.flushJournals(ctx) // a failing commit is logged by its journal; show what is committed
	var rep Report
	if err := l.db.QueryRow(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&rep.HeadSeq, &rep.HeadHash); err != nil {
		if apperr.Is(err, apperr.NotFound) {
			rep.Problems = append(rep.Problems, Problem{Kind: "deleted", Detail: "the chain head row is missing"})
			return rep, nil
		}
		return rep, fmt.Errorf("audit: read head: %w", err)
	}
	rows, err := l.db.Query(ctx, selectEntry+" ORDER BY seq")
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	var (
		wantSeq  int64 = 1
		prevHash       = strings.Repeat("0", 64)
	)
	for rows.Next() {
		e, details, err := scanEntry(rows)
		if err != nil {
			return rep, err
		}
		rep.Entries++
		for ; wantSeq < e.Seq; wantSeq++ {
			rep.Problems = append(rep.Problems, Problem{Seq: wantSeq, Kind: "deleted", Detail: fmt.Sprintf("entry %d is missing", wantSeq)})
			prevHash = "" // unknown: the missing entry's hash
		}
		if prevHash != "" && e.PrevHash != prevHash {
			rep.Problems = append(rep.Problems, Problem{Seq: e.Seq, Kind: "relinked",
				Detail: fmt.Sprintf("entry %d does not point at the hash of entry %d", e.Seq, e.Seq-1)})
		}
		if got := hashEntry(&e, details); got != e.Hash {
			rep.Problems = append(rep.Problems, Problem{Seq: e.Seq, Kind: "edited",
				Detail: fmt.Sprintf("entry %d (%s by %s) was changed after it was written", e.Seq, e.Action, e.ActorName)})
		}
		prevHash = e.Hash
		wantSeq = e.Seq + 1
	}
	if err := rows.Err(); err != nil {
		return rep, err
	}
	last := wantSeq - 1
	switch {
	case rep.HeadSeq > last:
		for s := last + 1; s <= rep.HeadSeq; s++ {
			rep.Problems = append(rep.Problems, Problem{Seq: s, Kind: "deleted", Detail: fmt.Sprintf("entry %d is missing (the head points at %d)", s, rep.HeadSeq)})
		}
	case rep.HeadSeq < last:
		rep.Problems = append(rep.Problems, Problem{Seq: rep.HeadSeq, Kind: "edited", Detail: fmt.Sprintf("the chain head was moved back from %d to %d", last, rep.HeadSeq)})
	case prevHash != "" && last > 0 && rep.HeadHash != prevHash:
		rep.Problems = append(rep.Problems, Problem{Seq: last, Kind: "edited", Detail: "the chain head does not match the last entry"})
	}
	return rep, nil
}
