package waf

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/types"
)

// Outcome is what the WAF did with one request.
type Outcome struct {
	// Blocked is set when the WAF answered instead of the backend.
	Blocked bool
	// Status is the status the WAF answered with when Blocked.
	Status int
	// RuleID is the rule that blocked the request, or in detect mode the
	// CRS evaluation rule that would have blocked it (0 when nothing
	// would have).
	RuleID int
	// Phase is "request" or "response": which side of the exchange was
	// flagged.
	Phase string
	// Message is the message of RuleID's match.
	Message string
	// Rules lists the ids of every logged match, in order.
	Rules []int
}

// Flagged reports whether the request was blocked or, in detect mode,
// would have been.
func (o Outcome) Flagged() bool { return o.RuleID != 0 }

// Deny writes the answer to a blocked request.
type Deny func(w http.ResponseWriter, r *http.Request, status int)

// anomaly evaluation rules of the CRS: a match means the request (949110)
// or the response (959100) reached its anomaly threshold.
const (
	ruleInboundAnomaly  = 949110
	ruleOutboundAnomaly = 959100
)

// Serve runs r through the WAF around next (the proxy): the request line,
// headers and body (buffered up to the engine's limit) before next sees
// them, the response headers and, when the route inspects responses, the
// response body before the client does. id becomes the transaction id in
// match lines (Rampart uses the request id). deny answers blocked
// requests.
func (w *WAF) Serve(rw http.ResponseWriter, r *http.Request, id string, next http.Handler, deny Deny) (out Outcome) {
	tx := w.waf.(experimental.WAFWithOptions).NewTransactionWithOptions(experimental.Options{ID: id, Context: r.Context()})
	defer func() {
		// Phase 5 (logging) runs before the handler returns, so its
		// match lines are written before the client has the response.
		tx.ProcessLogging()
		out = w.summarise(tx, out)
		_ = tx.Close()
	}()
	if it := processRequest(tx, r); it != nil {
		return block(rw, r, deny, it, "request")
	}
	iw := &interceptor{ResponseWriter: rw, tx: tx, proto: r.Proto, r: r, deny: deny}
	next.ServeHTTP(iw, r)
	iw.finish()
	if iw.blocked != nil {
		return *iw.blocked
	}
	return Outcome{}
}

func block(rw http.ResponseWriter, r *http.Request, deny Deny, it *types.Interruption, phase string) Outcome {
	status := it.Status
	if status == 0 || it.Action != "deny" && it.Action != "drop" {
		status = http.StatusForbidden
	}
	deny(rw, r, status)
	return Outcome{Blocked: true, Status: status, RuleID: it.RuleID, Phase: phase}
}

// summarise fills the rule list, and in detect mode the evaluation rule
// that would have blocked.
func (w *WAF) summarise(tx types.Transaction, out Outcome) Outcome {
	out.Rules = []int{}
	for _, m := range tx.MatchedRules() {
		id := m.Rule().ID()
		if w.quiet[id] {
			continue // a nolog rule (Rampart's rule filter, the CRS's set-up and guards): not a finding
		}
		out.Rules = append(out.Rules, id)
		if id == out.RuleID && out.Message == "" {
			out.Message = m.Message()
		}
		if !out.Blocked && out.RuleID == 0 && (id == ruleInboundAnomaly || id == ruleOutboundAnomaly) {
			out.RuleID, out.Message = id, m.Message()
			out.Phase = "request"
			if id == ruleOutboundAnomaly {
				out.Phase = "response"
			}
		}
	}
	return out
}

func processRequest(tx types.Transaction, r *http.Request) *types.Interruption {
	client, cport := splitAddr(r.RemoteAddr)
	var (
		server string
		sport  int
	)
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		server, sport = splitAddr(la.String())
	}
	tx.ProcessConnection(client, cport, server, sport)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	for k, vs := range r.Header {
		addHeader(tx.AddRequestHeader, k, vs)
	}
	if r.Host != "" {
		tx.AddRequestHeader("Host", r.Host)
		tx.SetServerName(hostOnly(r.Host))
	}
	addHeader(tx.AddRequestHeader, "Transfer-Encoding", r.TransferEncoding)
	if it := tx.ProcessRequestHeaders(); it != nil {
		return it
	}
	if tx.IsRequestBodyAccessible() && r.Body != nil && r.Body != http.NoBody {
		it, _, err := tx.ReadRequestBodyFrom(r.Body)
		if err != nil {
			// The client went away or sent a broken body: nothing to
			// inspect, and nothing to forward.
			return &types.Interruption{Action: "deny", Status: http.StatusBadRequest}
		}
		if it != nil {
			return it
		}
		rbr, err := tx.RequestBodyReader()
		if err != nil {
			return &types.Interruption{Action: "deny", Status: http.StatusInternalServerError}
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(rbr, r.Body), r.Body}
	}
	it, err := tx.ProcessRequestBody()
	if err != nil {
		return &types.Interruption{Action: "deny", Status: http.StatusInternalServerError}
	}
	return it
}

// addHeader hands each value of header k to add with its own copy of the
// name. Coraza's transformation cache tells values apart by the address
// of their name and their position in a list built from a Go map, whose
// order changes from rule to rule: two values sharing one name string can
// be handed each other's cached transformed form, and a rule can then
// miss a repeated header's value.
func addHeader(add func(k, v string), k string, vs []string) {
	for i, v := range vs {
		if i > 0 {
			k = strings.Clone(k)
		}
		add(k, v)
	}
}

func splitAddr(a string) (string, int) {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return a, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

// interceptor runs the response through the WAF: headers always, bodies
// of inspected types when the route inspects responses (then buffered
// until the end, or until the WAF's response limit, after which the rest
// streams).
type interceptor struct {
	http.ResponseWriter
	tx      types.Transaction
	r       *http.Request
	proto   string
	deny    Deny
	status  int
	wrote   bool // WriteHeader seen
	sent    bool // headers sent downstream
	buffer  bool // holding the body for inspection
	blocked *Outcome
}

func (i *interceptor) WriteHeader(code int) {
	if i.wrote || i.blocked != nil {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		i.ResponseWriter.WriteHeader(code) // informational: pass on
		return
	}
	i.wrote = true
	i.status = code
	for k, vs := range i.Header() {
		addHeader(i.tx.AddResponseHeader, k, vs)
	}
	if it := i.tx.ProcessResponseHeaders(code, i.proto); it != nil {
		i.clear()
		o := block(i.ResponseWriter, i.r, i.deny, it, "response")
		i.blocked = &o
		return
	}
	if i.tx.IsResponseBodyAccessible() && i.tx.IsResponseBodyProcessable() && code != http.StatusSwitchingProtocols {
		i.buffer = true
		return
	}
	i.send()
}

func (i *interceptor) clear() {
	h := i.Header()
	for k := range h {
		delete(h, k)
	}
}

func (i *interceptor) send() {
	if !i.sent {
		i.sent = true
		i.ResponseWriter.WriteHeader(i.status)
	}
}

func (i *interceptor) Write(b []byte) (int, error) {
	if !i.wrote {
		i.WriteHeader(http.StatusOK)
	}
	if i.blocked != nil {
		return len(b), nil
	}
	if !i.buffer {
		return i.ResponseWriter.Write(b)
	}
	it, n, err := i.tx.WriteResponseBody(b)
	if it != nil {
		i.clear()
		o := block(i.ResponseWriter, i.r, i.deny, it, "response")
		i.blocked = &o
		return len(b), nil
	}
	if err != nil {
		return n, err
	}
	if n < len(b) {
		// Over the inspection limit: what was buffered goes out as it
		// is, and the rest streams.
		if err := i.release(); err != nil {
			return n, err
		}
		m, err := i.ResponseWriter.Write(b[n:])
		return n + m, err
	}
	return n, nil
}

// release sends the headers and the buffered body and stops buffering.
func (i *interceptor) release() error {
	i.buffer = false
	rd, err := i.tx.ResponseBodyReader()
	if err != nil {
		return fmt.Errorf("waf: read buffered response: %w", err)
	}
	i.Header().Del("Content-Length")
	i.send()
	_, err = io.Copy(i.ResponseWriter, rd)
	return err
}

// Flush passes flushes on unless the body is held for inspection.
func (i *interceptor) Flush() {
	if i.buffer || i.blocked != nil {
		return
	}
	if !i.wrote {
		i.WriteHeader(http.StatusOK)
	}
	if f, ok := i.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (websocket
// upgrades hijack it).
func (i *interceptor) Unwrap() http.ResponseWriter { return i.ResponseWriter }

// finish runs the response body phase once next has returned.
func (i *interceptor) finish() {
	if i.blocked != nil {
		return
	}
	if !i.wrote {
		// Hijacked (websocket) or nothing written: nothing to inspect.
		return
	}
	if !i.buffer {
		return
	}
	it, err := i.tx.ProcessResponseBody()
	if err == nil && it != nil {
		i.clear()
		o := block(i.ResponseWriter, i.r, i.deny, it, "response")
		i.blocked = &o
		return
	}
	// Keep the backend's Content-Length when the whole body was held.
	var buf bytes.Buffer
	if rd, err := i.tx.ResponseBodyReader(); err == nil {
		_, _ = io.Copy(&buf, rd)
	}
	i.buffer = false
	i.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	i.send()
	_, _ = i.ResponseWriter.Write(buf.Bytes())
}
