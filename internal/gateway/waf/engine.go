package waf

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/types"

	"github.com/rampartsec/rampart/internal/logging"
)

// CRSVersion is the version of the OWASP Core Rule Set compiled in.
const CRSVersion = "4.25.0"

// Options configure an Engine.
type Options struct {
	// MatchLog receives one ModSecurity-style line per logged rule match
	// ("[client …] Coraza: Warning. … [id "942100"] … [unique_id "REQID"]").
	// nil discards them.
	MatchLog io.Writer
	// Logger reports rule-set compilation.
	Logger *slog.Logger
	// RequestBodyLimit caps the request body the WAF buffers and inspects
	// (bytes); larger bodies are refused with 413.
	RequestBodyLimit int64
	// ExtraDirectives are SecLang directives placed after Rampart's
	// settings and before the CRS setup (the CRS regression suite's
	// test rules, for example).
	ExtraDirectives string
	// NoRuleFilter turns pruning (prune.go) and the rule filter
	// (rulefilter.go) off: every rule runs on every request, as in plain
	// Coraza. For comparisons.
	NoRuleFilter bool
}

// Engine compiles rule sets on demand, one per distinct Settings, and
// shares them between the routes that use the same settings.
type Engine struct {
	opt  Options
	log  *lineLog
	mu   sync.Mutex
	wafs map[string]*entry
}

type entry struct {
	once sync.Once
	waf  *WAF
	err  error
}

// NewEngine returns an engine; rule sets compile lazily on first use.
func NewEngine(opt Options) *Engine {
	if opt.Logger == nil {
		opt.Logger = logging.Discard()
	}
	if opt.RequestBodyLimit <= 0 {
		opt.RequestBodyLimit = 13 << 20
	}
	return &Engine{opt: opt, log: newLineLog(opt.MatchLog), wafs: map[string]*entry{}}
}

// For returns the compiled WAF for s (normalised), compiling it on first
// use (about a second and tens of megabytes for the full CRS). It returns
// nil for mode off.
func (e *Engine) For(s Settings) (*WAF, error) {
	s, err := s.Normalize()
	if err != nil {
		return nil, err
	}
	if s.Mode == Off {
		return nil, nil
	}
	k := s.key()
	e.mu.Lock()
	en := e.wafs[k]
	if en == nil {
		en = &entry{}
		e.wafs[k] = en
	}
	e.mu.Unlock()
	en.once.Do(func() {
		start := time.Now()
		en.waf, en.err = e.compile(s)
		if en.err == nil {
			e.opt.Logger.Info("waf rule set compiled", "mode", string(s.Mode), "paranoia", s.Paranoia,
				"rules", en.waf.rules, "pruned", en.waf.pruned, "filterable", en.waf.filtered, logging.KeyDuration, time.Since(start).Milliseconds())
		}
	})
	if en.err != nil {
		// Do not cache failures: the next call tries again.
		e.mu.Lock()
		if e.wafs[k] == en {
			delete(e.wafs, k)
		}
		e.mu.Unlock()
	}
	return en.waf, en.err
}

// Forget drops compiled rule sets no route uses any more.
func (e *Engine) Forget(inUse []Settings) {
	keep := map[string]bool{}
	for _, s := range inUse {
		if n, err := s.Normalize(); err == nil {
			keep[n.key()] = true
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.wafs {
		if !keep[k] {
			delete(e.wafs, k)
		}
	}
}

// Directives returns the SecLang configuration Rampart compiles for s:
// Coraza's recommended base, Rampart's settings, the CRS setup and rules,
// then the route's exclusions.
func (e *Engine) Directives(s Settings) string { return e.directives(s, "") }

// directives is Directives with the rule filter's two SecActions
// (rulefilter.go) ahead of every other rule of phases 1 and 2 when
// filterKey is set.
func (e *Engine) directives(s Settings, filterKey string) string {
	var b strings.Builder
	if filterKey != "" {
		fmt.Fprintf(&b, "SecAction \"id:%d,phase:1,pass,nolog,%s:%s\"\n", ruleFilterID1, ruleFilterAction, filterKey)
		fmt.Fprintf(&b, "SecAction \"id:%d,phase:2,pass,nolog,%s:%s\"\n", ruleFilterID2, ruleFilterAction, filterKey)
	}
	engine := "On"
	if s.Mode == Detect {
		engine = "DetectionOnly"
	}
	respBody := "Off"
	if s.InspectResponses {
		respBody = "On"
	}
	fmt.Fprintf(&b, `Include @coraza.conf-recommended
SecRuleEngine %s
SecRxPreFilter Off
SecAuditEngine Off
SecDefaultAction "phase:3,log,auditlog,pass"
SecDefaultAction "phase:4,log,auditlog,pass"
SecDefaultAction "phase:5,log,auditlog,pass"
SecRequestBodyLimit %d
SecRequestBodyInMemoryLimit %d
SecResponseBodyAccess %s
SecResponseBodyMimeType text/plain text/html text/xml application/json
SecAction "id:900000,phase:1,pass,nolog,setvar:tx.blocking_paranoia_level=%d"
SecAction "id:900110,phase:1,pass,nolog,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=%d"
`, engine, e.opt.RequestBodyLimit, min(e.opt.RequestBodyLimit, 1<<20), respBody, s.Paranoia, s.InboundThreshold, s.OutboundThreshold)
	if e.opt.ExtraDirectives != "" {
		b.WriteString(e.opt.ExtraDirectives)
		b.WriteString("\n")
	}
	b.WriteString("Include @crs-setup.conf.example\nInclude @owasp_crs/*.conf\n")
	for _, r := range s.ExcludeRules {
		fmt.Fprintf(&b, "SecRuleRemoveById %s\n", r)
	}
	return b.String()
}

func (e *Engine) compile(s Settings) (*WAF, error) {
	registerOperators()
	registerRuleFilter()
	key, slot := "", (*atomic.Pointer[ruleFilter])(nil)
	if !e.opt.NoRuleFilter {
		key, slot = newFilterSlot()
	}
	directives := e.directives(s, key)
	// The configuration as the pruning and the filter read it; without
	// it every rule runs (slower, never less safe).
	sec, serr := readSecLang(directives, coreruleset.FS)
	if serr != nil {
		e.opt.Logger.Warn("waf rule set not analysed; every rule runs", "err", serr)
		if key != "" {
			dropFilterSlot(key)
			key = ""
			directives = e.directives(s, "") // without the filter's rules, which would only show as matches
		}
	}
	if key != "" && serr == nil && (idUses(sec, ruleFilterID1) > 1 || idUses(sec, ruleFilterID2) > 1) {
		// A rule of the configuration has one of the filter's ids.
		e.opt.Logger.Warn("waf rule filter off: rule ids taken", "ids", []int{ruleFilterID1, ruleFilterID2})
		dropFilterSlot(key)
		key = ""
		directives = e.directives(s, "")
		sec, serr = readSecLang(directives, coreruleset.FS)
	}
	pruned := 0
	if key != "" && serr == nil {
		dead := deadRules(sec, s.Paranoia)
		directives += removeByID(dead)
		for _, id := range dead {
			sec.removed[id] = true
		}
		pruned = len(dead)
	}
	cfg := coraza.NewWAFConfig().
		WithRootFS(coreruleset.FS).
		WithDirectives(directives).
		WithErrorCallback(e.log.write)
	compileMu.Lock()
	var ops []opRecord
	opLog.Store(&ops)
	w, err := coraza.NewWAF(cfg)
	opLog.Store(nil)
	compileMu.Unlock()
	if key != "" {
		// The filter's action found its slot while the rules compiled
		// and keeps it; the registry entry is no longer needed.
		dropFilterSlot(key)
	}
	if err != nil {
		return nil, fmt.Errorf("compile waf rules: %w", err)
	}
	out := &WAF{waf: w, settings: s, pruned: pruned, quiet: map[int]bool{}}
	if serr == nil {
		for _, r := range sec.rules {
			if r.nolog && r.id > 0 {
				out.quiet[r.id] = true
			}
		}
	}
	if key != "" && serr == nil {
		if f, ferr := buildFilter(sec, ops); ferr != nil {
			e.opt.Logger.Warn("waf rule filter off; every rule runs", "err", ferr)
		} else {
			slot.Store(f)
			out.filtered = len(f.phase1) + len(f.phase2)
		}
	}
	if rc, ok := w.(interface{ RulesCount() int }); ok {
		out.rules = rc.RulesCount()
	}
	return out, nil
}

// idUses counts the rules of cfg with id.
func idUses(cfg *secConfig, id int) int {
	n := 0
	for _, r := range cfg.rules {
		if r.id == id {
			n++
		}
	}
	return n
}

// removeByID returns SecRuleRemoveById directives for ids, a few dozen
// to a line.
func removeByID(ids []int) string {
	var b strings.Builder
	for i, id := range ids {
		switch {
		case i%50 == 0:
			b.WriteString("\nSecRuleRemoveById")
		}
		b.WriteString(" ")
		b.WriteString(strconv.Itoa(id))
	}
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

// WAF is one compiled rule set.
type WAF struct {
	waf      coraza.WAF
	settings Settings
	rules    int
	filtered int
	pruned   int
	// quiet are the rules with nolog: their matches are not findings.
	quiet map[int]bool
}

// Settings returns the settings the WAF was compiled for.
func (w *WAF) Settings() Settings { return w.settings }

// Filterable returns how many rules the rule filter may remove from a
// request (0 when it is off).
func (w *WAF) Filterable() int { return w.filtered }

// Pruned returns how many rules pruning (prune.go) took out of the rule
// set (0 when it is off).
func (w *WAF) Pruned() int { return w.pruned }

// lineLog writes matched rules as ModSecurity-style error-log lines.
type lineLog struct {
	mu sync.Mutex
	w  io.Writer
}

func newLineLog(w io.Writer) *lineLog { return &lineLog{w: w} }

func (l *lineLog) write(m types.MatchedRule) {
	if l.w == nil {
		return
	}
	line := m.ErrorLog()
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, strings.TrimRight(line, "\n")+"\n")
}
