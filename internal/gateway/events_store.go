package gateway

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/store"
)

// EventStore keeps security events in the gateway_events table: the
// gateway's EventRecorder until the monitor component takes them.
type EventStore struct{ db *store.DB }

// NewEventStore returns the event store of db.
func NewEventStore(db *store.DB) *EventStore { return &EventStore{db: db} }

var _ EventRecorder = (*EventStore)(nil)

// RecordEvents stores security events (the gateway's EventRecorder).
func (s *EventStore) RecordEvents(ctx context.Context, events []Event) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		for _, e := range events {
			rules, _ := json.Marshal(e.Rules)
			if _, err := tx.Exec(ctx, `INSERT INTO gateway_events (at, request_id, route_id, route, org_id, project_id, outcome, phase,
				rule_id, message, status, client_ip, method, host, path, user_agent, rules) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				store.Time(e.At), e.RequestID, e.RouteID, e.Route, e.OrgID, e.ProjectID, e.Outcome, e.Phase, e.RuleID,
				strings.ToValidUTF8(e.Message, "?"), e.Status, e.ClientIP, strings.ToValidUTF8(e.Method, "?"), e.Host,
				strings.ToValidUTF8(e.Path, "?"), strings.ToValidUTF8(e.UserAgent, "?"), string(rules)); err != nil {
				return err
			}
		}
		return nil
	})
}

// EventFilter selects security events.
type EventFilter struct {
	RequestID string
	Route     string
	Outcome   string
	Limit     int // default 100, at most 1000
}

// Events returns security events, newest first.
func (s *EventStore) Events(ctx context.Context, f EventFilter) ([]Event, error) {
	var conds []string
	var args []any
	if f.RequestID != "" {
		conds, args = append(conds, "request_id = ?"), append(args, f.RequestID)
	}
	if f.Route != "" {
		conds, args = append(conds, "route = ?"), append(args, f.Route)
	}
	if f.Outcome != "" {
		conds, args = append(conds, "outcome = ?"), append(args, f.Outcome)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	q := `SELECT at, request_id, route_id, route, org_id, project_id, outcome, phase, rule_id, message, status, client_ip, method, host, path,
		user_agent, rules FROM gateway_events`
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	rows, err := s.db.Query(ctx, q+" ORDER BY id DESC LIMIT "+strconv.Itoa(f.Limit), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var (
			e     Event
			rules string
		)
		if err := rows.Scan(store.TimeDest(&e.At), &e.RequestID, &e.RouteID, &e.Route, &e.OrgID, &e.ProjectID, &e.Outcome, &e.Phase,
			&e.RuleID, &e.Message, &e.Status, &e.ClientIP, &e.Method, &e.Host, &e.Path, &e.UserAgent, &rules); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(rules), &e.Rules)
		out = append(out, e)
	}
	return out, rows.Err()
}
