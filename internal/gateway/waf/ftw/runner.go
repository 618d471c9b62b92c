package ftw

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// Result of one test.
type Result uint8

// Results.
const (
	Passed Result = iota
	Failed
	Ignored
)

// Outcome is one test's result with the evidence.
type Outcome struct {
	Title  string
	Result Result
	// Why explains a failure (or names the override's reason).
	Why string
	// Overridden is set when an override changed the expected output.
	Overridden bool
	// Lines are the log lines of a failed stage's request.
	Lines []string
}

// Override changes what a test expects, or ignores it, with a reason.
type Override struct {
	Test   string `yaml:"test"`
	Reason string `yaml:"reason"`
	// Ignore skips the test.
	Ignore bool `yaml:"ignore"`
	// Status, when set, replaces the expected status.
	Status int `yaml:"status"`
	// ExpectIDs and NoExpectIDs, when set, replace the expected rule ids.
	ExpectIDs   []int `yaml:"expect_ids"`
	NoExpectIDs []int `yaml:"no_expect_ids"`
	// MatchRegex, when set, replaces the regular expression a log line
	// must match ("-" removes it).
	MatchRegex string `yaml:"match_regex"`
	// ExpectError, when set, replaces whether the request must fail.
	ExpectError *bool `yaml:"expect_error"`
}

// ParseOverrides reads an overrides file: a list under "overrides", each
// with a test title and a reason.
func ParseOverrides(data []byte) (map[string]Override, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("overrides file too large")
	}
	var doc struct {
		Overrides []Override `yaml:"overrides"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse overrides: %w", err)
	}
	out := map[string]Override{}
	for _, o := range doc.Overrides {
		if !titleRE.MatchString(o.Test) {
			return nil, fmt.Errorf("override %q: test must be RULE-ID", o.Test)
		}
		if o.Reason == "" {
			return nil, fmt.Errorf("override %s has no reason", o.Test)
		}
		if o.MatchRegex != "" && o.MatchRegex != "-" {
			if _, err := regexp.Compile(o.MatchRegex); err != nil {
				return nil, fmt.Errorf("override %s: match_regex: %w", o.Test, err)
			}
		}
		if _, dup := out[o.Test]; dup {
			return nil, fmt.Errorf("override %s is listed twice", o.Test)
		}
		out[o.Test] = o
	}
	return out, nil
}

var titleRE = regexp.MustCompile(`^\d{1,7}-\d{1,5}$`)

// Runner replays tests against a WAF.
type Runner struct {
	// Addr is host:port of the WAF (every test's dest_addr and port are
	// replaced by it).
	Addr string
	// Log is the WAF's match log.
	Log *LogReader
	// Overrides by test title.
	Overrides map[string]Override
	// Timeout bounds one request (default 10s).
	Timeout time.Duration
	// Parallel is how many tests run at once (default 1).
	Parallel int
}

// Run replays every test of files and returns their outcomes in order.
func (r *Runner) Run(ctx context.Context, files []File) []Outcome {
	type job struct {
		f File
		t Test
		i int
	}
	var jobs []job
	for _, f := range files {
		for _, t := range f.Tests {
			jobs = append(jobs, job{f, t, len(jobs)})
		}
	}
	out := make([]Outcome, len(jobs))
	ch := make(chan job)
	var wg sync.WaitGroup
	for range max(1, r.Parallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				out[j.i] = r.runTest(ctx, j.f, j.t)
			}
		}()
	}
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		ch <- j
	}
	close(ch)
	wg.Wait()
	return out
}

func (r *Runner) runTest(ctx context.Context, f File, t Test) Outcome {
	title := f.Title(t)
	o := Outcome{Title: title}
	ov, hasOv := r.Overrides[title]
	if hasOv && ov.Ignore {
		o.Result, o.Why = Ignored, ov.Reason
		return o
	}
	for i, s := range t.Stages {
		want := s.Output
		if hasOv {
			o.Overridden = true
			if ov.Status != 0 {
				want.Status = ov.Status
			}
			if ov.ExpectIDs != nil {
				want.ExpectIDs = ov.ExpectIDs
			}
			if ov.NoExpectIDs != nil {
				want.NoExpectIDs = ov.NoExpectIDs
			}
			switch ov.MatchRegex {
			case "":
			case "-":
				want.MatchRegex = nil
			default:
				want.MatchRegex = regexp.MustCompile(ov.MatchRegex)
			}
			if ov.ExpectError != nil {
				want.ExpectError = *ov.ExpectError
			}
		}
		if why, lines := r.runStage(ctx, s.Input, want); why != "" {
			o.Result, o.Lines = Failed, lines
			o.Why = fmt.Sprintf("stage %d: %s", i+1, why)
			return o
		}
	}
	return o
}

// runStage sends one request and returns why it failed ("" on success)
// with the request's log lines.
func (r *Runner) runStage(ctx context.Context, in Input, want Output) (string, []string) {
	status, reqID, err := r.send(ctx, in.Request())
	if err != nil {
		if want.ExpectError {
			return "", nil
		}
		return "request failed: " + err.Error(), nil
	}
	if want.ExpectError {
		return fmt.Sprintf("got a response (status %d), want the request to fail", status), nil
	}
	var lines []string
	if reqID != "" {
		lines = r.Log.Lines(reqID)
	}
	return r.judge(status, lines, want), lines
}

// judge compares a response status and its log lines with want.
func (r *Runner) judge(status int, lines []string, want Output) string {
	if want.Status != 0 && status != want.Status {
		return fmt.Sprintf("status %d, want %d", status, want.Status)
	}
	ids := ruleIDs(lines)
	var missing, unwanted []int
	for _, id := range want.ExpectIDs {
		if !slices.Contains(ids, id) {
			missing = append(missing, id)
		}
	}
	for _, id := range want.NoExpectIDs {
		if slices.Contains(ids, id) {
			unwanted = append(unwanted, id)
		}
	}
	switch {
	case len(missing) > 0:
		return fmt.Sprintf("rules %v not in the log (status %d, logged %v)", missing, status, ids)
	case len(unwanted) > 0:
		return fmt.Sprintf("rules %v in the log, want them absent (status %d)", unwanted, status)
	case want.MatchRegex != nil && !anyMatch(want.MatchRegex, lines):
		return fmt.Sprintf("no log line matches %q (logged %v)", want.MatchRegex, ids)
	case want.NoMatchRegex != nil && anyMatch(want.NoMatchRegex, lines):
		return fmt.Sprintf("a log line matches %q", want.NoMatchRegex)
	case want.Isolated && len(ids) != 1:
		return fmt.Sprintf("isolated test logged %v, want exactly one rule", ids)
	}
	return ""
}

func anyMatch(re *regexp.Regexp, lines []string) bool {
	for _, l := range lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

var idRE = regexp.MustCompile(`\[id "(\d+)"\]`)

// ruleIDs returns the distinct rule ids in lines.
func ruleIDs(lines []string) []int {
	var ids []int
	for _, l := range lines {
		for _, m := range idRE.FindAllStringSubmatch(l, -1) {
			id, err := strconv.Atoi(m[1])
			if err == nil && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	slices.Sort(ids)
	return ids
}

// send writes raw to a new connection and reads one response: its status
// and X-Request-Id. A connection closed without a parseable response is an
// error.
func (r *Runner) send(ctx context.Context, raw []byte) (int, string, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(raw); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	// Read the whole body: the gateway writes its log lines before the
	// response is complete.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Request-Id"), nil
}

// LogReader follows a match log file and indexes its lines by the
// transaction id they carry ([unique_id "…"]).
type LogReader struct {
	path string
	mu   sync.Mutex
	off  int64
	rest []byte
	byID map[string][]string
}

// NewLogReader follows the log at path from its current end.
func NewLogReader(path string) (*LogReader, error) {
	fi, err := os.Stat(path)
	var off int64
	switch {
	case err == nil:
		off = fi.Size()
	case !os.IsNotExist(err):
		return nil, err
	}
	return &LogReader{path: path, off: off, byID: map[string][]string{}}, nil
}

var uniqueIDRE = regexp.MustCompile(`\[unique_id "([^"]+)"\]`)

// Lines returns the lines logged for transaction id so far.
func (l *LogReader) Lines(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.readNew()
	return l.byID[id]
}

func (l *LogReader) readNew() {
	f, err := os.Open(l.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(l.off, io.SeekStart); err != nil {
		return
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return
	}
	l.off += int64(len(b))
	b = append(l.rest, b...)
	last := bytes.LastIndexByte(b, '\n')
	if last < 0 {
		l.rest = b
		return
	}
	l.rest = slices.Clone(b[last+1:])
	for line := range bytes.SplitSeq(b[:last], []byte("\n")) {
		m := uniqueIDRE.FindSubmatch(line)
		if m == nil {
			continue
		}
		id := string(m[1])
		l.byID[id] = append(l.byID[id], string(line))
	}
}
