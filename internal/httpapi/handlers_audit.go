package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
)

// auditFilter reads audit filters from the query string.
func (s *Server) auditFilter(c *Call) (audit.Filter, error) {
	q := c.R.URL.Query()
	f := audit.Filter{ActorName: q.Get("actor"), Action: q.Get("action"), Outcome: q.Get("outcome")}
	for _, v := range []string{f.ActorName, f.Action, f.Outcome} {
		if len(v) > 100 {
			return f, apperr.E(apperr.Invalid, "filter values must be at most 100 bytes")
		}
	}
	if v := q.Get("org"); v != "" {
		o, err := s.ids.Org(c.R.Context(), v)
		if err != nil {
			return f, err
		}
		f.OrgID = o.ID
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, apperr.InvalidField(name, "%s must be an RFC 3339 time", name)
			}
			*dst = t
		}
	}
	for name, dst := range map[string]*int64{"before": &f.BeforeSeq, "after": &f.AfterSeq} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return f, apperr.InvalidField(name, "%s must be a sequence number", name)
			}
			*dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			return f, apperr.InvalidField("limit", "limit must be 1 to 500")
		}
		f.Limit = n
	}
	return f, nil
}

func (s *Server) listAudit(c *Call) error {
	f, err := s.auditFilter(c)
	if err != nil {
		return err
	}
	es, err := s.audit.List(c.R.Context(), f)
	if err != nil {
		return err
	}
	if es == nil {
		es = []audit.Entry{}
	}
	return c.JSON(es)
}

func (s *Server) orgAudit(c *Call) error {
	f, err := s.auditFilter(c)
	if err != nil {
		return err
	}
	f.OrgID = c.Org.ID
	es, err := s.audit.List(c.R.Context(), f)
	if err != nil {
		return err
	}
	if es == nil {
		es = []audit.Entry{}
	}
	return c.JSON(es)
}

func (s *Server) exportAudit(c *Call) error {
	f, err := s.auditFilter(c)
	if err != nil {
		return err
	}
	c.W.Header().Set("Content-Type", "application/jsonl")
	c.W.Header().Set("Cache-Control", "no-store")
	c.W.WriteHeader(http.StatusOK)
	_, err = s.audit.Export(c.R.Context(), c.W, f)
	if err != nil {
		// Headers are gone; the truncated stream is the signal. Log it.
		s.log.ErrorContext(c.R.Context(), "audit export failed", "err", err)
	}
	return nil
}

func (s *Server) verifyAudit(c *Call) error {
	rep, err := s.audit.Verify(c.R.Context())
	if err != nil {
		return err
	}
	if rep.Problems == nil {
		rep.Problems = []audit.Problem{}
	}
	return c.JSON(rep)
}
