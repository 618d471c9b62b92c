package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/rampartsec/rampart/internal/logging"
)

// Event is a security event: a request the WAF blocked, or in detect mode
// would have blocked, or a request on a WAF route whose client stopped
// sending its body (RuleID 0, Status 408, Message SlowBodyMessage…).
// Blocked requests carry the request id the client was shown.
type Event struct {
	At        time.Time `json:"at"`
	RequestID string    `json:"request_id"`
	RouteID   int64     `json:"route_id,omitempty"`
	Route     string    `json:"route"`
	OrgID     int64     `json:"-"`
	ProjectID int64     `json:"-"`
	// Outcome is "blocked" or "detected".
	Outcome string `json:"outcome"`
	// Phase is "request" or "response".
	Phase     string `json:"phase"`
	RuleID    int    `json:"rule_id"`
	Message   string `json:"message,omitempty"`
	Status    int    `json:"status,omitempty"`
	ClientIP  string `json:"client_ip"`
	Method    string `json:"method"`
	Host      string `json:"host"`
	Path      string `json:"path"`
	UserAgent string `json:"user_agent,omitempty"`
	// Rules lists every rule that matched, in order.
	Rules []int `json:"rules,omitempty"`
}

// EventRecorder stores security events (the gateway's events table now;
// the monitor component's security event stream when it exists).
type EventRecorder interface {
	RecordEvents(ctx context.Context, events []Event) error
}

// eventQueue hands events from request goroutines to one writer, so a
// flood of attacks costs a channel send per request, never a database
// write. When the writer falls behind, events are dropped and counted.
type eventQueue struct {
	ch  chan Event
	rec EventRecorder
	log *slog.Logger
	m   *metrics
}

const (
	eventQueueLen = 4096
	eventBatch    = 256
)

func newEventQueue(rec EventRecorder, log *slog.Logger, m *metrics) *eventQueue {
	return &eventQueue{ch: make(chan Event, eventQueueLen), rec: rec, log: log, m: m}
}

func (q *eventQueue) emit(e Event) {
	if q.rec == nil {
		return
	}
	select {
	case q.ch <- e:
	default:
		q.m.events.WithLabelValues("dropped").Inc()
	}
}

// run writes events in batches until ctx ends, then writes what is left.
func (q *eventQueue) run(ctx context.Context) {
	if q.rec == nil {
		return
	}
	batch := make([]Event, 0, eventBatch)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := q.rec.RecordEvents(wctx, batch)
		cancel()
		if err != nil {
			q.log.Error("record security events", logging.KeyErr, err, "count", len(batch))
			q.m.events.WithLabelValues("dropped").Add(float64(len(batch)))
		} else {
			q.m.events.WithLabelValues("recorded").Add(float64(len(batch)))
		}
		batch = batch[:0]
	}
	for {
		select {
		case e := <-q.ch:
			batch = append(batch, e)
			// Take what else is queued, up to a batch.
			for len(batch) < eventBatch {
				select {
				case e := <-q.ch:
					batch = append(batch, e)
					continue
				default:
				}
				break
			}
			flush()
		case <-ctx.Done():
			for {
				select {
				case e := <-q.ch:
					batch = append(batch, e)
					if len(batch) == eventBatch {
						flush()
					}
					continue
				default:
				}
				break
			}
			flush()
			return
		}
	}
}
