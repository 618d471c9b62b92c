// Package ftw reads regression tests in the go-ftw YAML format (the OWASP
// Core Rule Set's tests/regression/tests) and replays them against a
// running WAF over raw TCP, judging each by the status it answers and by
// the rule ids in its ModSecurity-style match log.
//
// A test has stages; a stage sends one request — built from method, URI,
// version, headers and data, or taken whole from encoded_request — and
// states what must follow: a status, rule ids that must (expect_ids) or
// must not (no_expect_ids) appear in the log, regular expressions the
// log must or must not match, or an error (no valid response). Requests
// are built the way go-ftw builds them: the request line as written
// (broken methods and versions included), headers sorted by name, and
// unless autocomplete_headers is false a form Content-Type for bodies,
// form-encoded data, "Connection: close" and a Content-Length.
//
// The runner tells one request's log lines from another's by the
// transaction id the WAF writes in each line ([unique_id "…"]), which is
// the request id the gateway returns in X-Request-Id; so tests can run
// in parallel. Overrides — tests whose expected output differs behind
// this front end, or that cannot pass there at all — come from a YAML
// file, each with its reason.
package ftw

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"
)

// Limits on what a test file may hold.
const (
	MaxFileSize  = 4 << 20
	maxTests     = 2000
	maxStages    = 32
	maxHeaders   = 256
	maxRepeat    = 1 << 20
	maxRegexSize = 4096
)

// File is one test file.
type File struct {
	Name   string // set by the caller (the file name)
	RuleID int
	Tests  []Test
}

// Test is one test of a file.
type Test struct {
	ID     int
	Desc   string
	Stages []Stage
}

// Title is how go-ftw names a test: "RULE-ID".
func (f File) Title(t Test) string { return strconv.Itoa(f.RuleID) + "-" + strconv.Itoa(t.ID) }

// Stage is one request and what must follow from it.
type Stage struct {
	Input  Input
	Output Output
}

// Header is one request header, as written.
type Header struct{ Name, Value string }

// Input describes the request of a stage.
type Input struct {
	DestAddr            string
	Port                int
	Method              string
	URI                 string
	Version             string
	Headers             []Header
	Data                []byte
	HasData             bool
	EncodedRequest      []byte
	AutocompleteHeaders bool
}

// Output is what a stage expects.
type Output struct {
	Status       int
	ExpectError  bool
	ExpectIDs    []int
	NoExpectIDs  []int
	MatchRegex   *regexp.Regexp
	NoMatchRegex *regexp.Regexp
	Isolated     bool
}

// Raw YAML shapes.
type rawFile struct {
	Meta   yaml.Node `yaml:"meta"`
	Author string    `yaml:"author"`
	RuleID int       `yaml:"rule_id"`
	Tests  []rawTest `yaml:"tests"`
}

type rawTest struct {
	TestID int        `yaml:"test_id"`
	Desc   string     `yaml:"desc"`
	Stages []rawStage `yaml:"stages"`
}

type rawStage struct {
	Input  rawInput  `yaml:"input"`
	Output rawOutput `yaml:"output"`
}

type rawInput struct {
	DestAddr            string    `yaml:"dest_addr"`
	Port                int       `yaml:"port"`
	Protocol            string    `yaml:"protocol"`
	Method              *string   `yaml:"method"`
	URI                 *string   `yaml:"uri"`
	Version             *string   `yaml:"version"`
	Headers             yaml.Node `yaml:"headers"`
	Data                *string   `yaml:"data"`
	EncodedRequest      string    `yaml:"encoded_request"`
	AutocompleteHeaders *bool     `yaml:"autocomplete_headers"`
}

type rawOutput struct {
	Status           int    `yaml:"status"`
	ExpectError      bool   `yaml:"expect_error"`
	RetryOnce        bool   `yaml:"retry_once"`
	Isolated         bool   `yaml:"isolated"`
	ResponseContains string `yaml:"response_contains"`
	Log              struct {
		ExpectIDs    []int  `yaml:"expect_ids"`
		NoExpectIDs  []int  `yaml:"no_expect_ids"`
		MatchRegex   string `yaml:"match_regex"`
		NoMatchRegex string `yaml:"no_match_regex"`
	} `yaml:"log"`
}

// ReadDir reads every .yaml test file under dir (walked in lexical
// order), each File named after its base name.
func ReadDir(dir string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f, err := Parse(b)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		f.Name = filepath.Base(p)
		files = append(files, f)
		return nil
	})
	return files, err
}

// Parse reads one test file. An empty document is a file without tests.
func Parse(data []byte) (File, error) {
	if len(data) > MaxFileSize {
		return File{}, fmt.Errorf("test file is %d bytes, over the %d limit", len(data), MaxFileSize)
	}
	var rf rawFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		if errors.Is(err, io.EOF) {
			return File{}, nil // an empty document
		}
		return File{}, fmt.Errorf("parse test file: %w", err)
	}
	if len(rf.Tests) > maxTests {
		return File{}, fmt.Errorf("test file has %d tests, over the %d limit", len(rf.Tests), maxTests)
	}
	f := File{RuleID: rf.RuleID}
	for _, rt := range rf.Tests {
		if len(rt.Stages) == 0 || len(rt.Stages) > maxStages {
			return File{}, fmt.Errorf("test %d-%d: want 1 to %d stages", rf.RuleID, rt.TestID, maxStages)
		}
		t := Test{ID: rt.TestID, Desc: rt.Desc}
		for i, rs := range rt.Stages {
			s, err := stage(rs)
			if err != nil {
				return File{}, fmt.Errorf("test %d-%d stage %d: %w", rf.RuleID, rt.TestID, i+1, err)
			}
			t.Stages = append(t.Stages, s)
		}
		f.Tests = append(f.Tests, t)
	}
	return f, nil
}

func stage(rs rawStage) (Stage, error) {
	in := rs.Input
	s := Stage{Input: Input{DestAddr: in.DestAddr, Port: in.Port, Method: "GET", URI: "/", Version: "HTTP/1.1", AutocompleteHeaders: true}}
	if in.Protocol != "" && in.Protocol != "http" {
		return s, fmt.Errorf("protocol %q is not supported (http only)", in.Protocol)
	}
	if in.Method != nil {
		s.Input.Method = *in.Method
	}
	if in.URI != nil {
		s.Input.URI = *in.URI
	}
	if in.Version != nil {
		s.Input.Version = *in.Version
	}
	if in.AutocompleteHeaders != nil {
		s.Input.AutocompleteHeaders = *in.AutocompleteHeaders
	}
	hs, err := headers(&in.Headers)
	if err != nil {
		return s, err
	}
	s.Input.Headers = hs
	if in.Data != nil && in.EncodedRequest != "" {
		return s, errors.New("choose between data and encoded_request")
	}
	if in.Data != nil {
		d, err := renderData(*in.Data)
		if err != nil {
			return s, err
		}
		s.Input.Data, s.Input.HasData = d, true
	}
	if in.EncodedRequest != "" {
		raw, err := base64.StdEncoding.DecodeString(in.EncodedRequest)
		if err != nil {
			return s, fmt.Errorf("encoded_request is not base64: %w", err)
		}
		s.Input.EncodedRequest = raw
	}
	out := rs.Output
	s.Output = Output{Status: out.Status, ExpectError: out.ExpectError, ExpectIDs: out.Log.ExpectIDs,
		NoExpectIDs: out.Log.NoExpectIDs, Isolated: out.Isolated}
	if out.ResponseContains != "" {
		return s, errors.New("response_contains is not supported")
	}
	for _, p := range []struct {
		src string
		dst **regexp.Regexp
	}{{out.Log.MatchRegex, &s.Output.MatchRegex}, {out.Log.NoMatchRegex, &s.Output.NoMatchRegex}} {
		if p.src == "" {
			continue
		}
		if len(p.src) > maxRegexSize {
			return s, errors.New("log regular expression too long")
		}
		re, err := regexp.Compile(p.src)
		if err != nil {
			return s, fmt.Errorf("log regular expression: %w", err)
		}
		*p.dst = re
	}
	return s, nil
}

// headers reads the headers mapping in document order.
func headers(n *yaml.Node) ([]Header, error) {
	if n.Kind == 0 {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("headers must be a mapping")
	}
	if len(n.Content)/2 > maxHeaders {
		return nil, fmt.Errorf("more than %d headers", maxHeaders)
	}
	var out []Header
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
			return nil, errors.New("header names and values must be scalars")
		}
		out = append(out, Header{Name: k.Value, Value: v.Value})
	}
	return out, nil
}

// renderData evaluates the Go template syntax go-ftw allows in data; the
// only function is repeat (sprig's: {{ "1" | repeat 64200 }}).
func renderData(s string) ([]byte, error) {
	if !strings.Contains(s, "{{") {
		return []byte(s), nil
	}
	total := 0
	t, err := template.New("data").Funcs(template.FuncMap{
		"repeat": func(n int, s string) (string, error) {
			total += n * len(s)
			if n < 0 || total > maxRepeat {
				return "", fmt.Errorf("repeat: data over %d bytes", maxRepeat)
			}
			return strings.Repeat(s, n), nil
		},
	}).Parse(s)
	if err != nil {
		return nil, fmt.Errorf("data template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, nil); err != nil {
		return nil, fmt.Errorf("data template: %w", err)
	}
	return b.Bytes(), nil
}

// Request returns the bytes to send for in.
func (in Input) Request() []byte {
	if in.EncodedRequest != nil {
		return in.EncodedRequest
	}
	// go-ftw keeps one value per header name (the last written wins) and
	// looks names up case-sensitively.
	h := map[string]string{}
	for _, hd := range in.Headers {
		h[hd.Name] = hd.Value
	}
	data := in.Data
	if len(data) > 0 && in.AutocompleteHeaders {
		if h["Content-Type"] == "" {
			h["Content-Type"] = "application/x-www-form-urlencoded"
		}
		data = encodeForm(h["Content-Type"], data)
	}
	if strings.HasPrefix(h["Content-Type"], "multipart/form-data;") {
		data = bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
	}
	if in.AutocompleteHeaders {
		if h["Connection"] == "" {
			h["Connection"] = "close"
		}
		if (len(data) > 0 || bodyMethod.MatchString(in.Method)) && h["Content-Length"] == "" {
			h["Content-Length"] = strconv.Itoa(len(data))
		}
	}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.Grow(256 + len(data))
	fmt.Fprintf(&b, "%s %s %s\r\n", in.Method, in.URI, in.Version)
	for _, k := range names {
		b.WriteString(k + ": " + h[k] + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(data)
	return b.Bytes()
}

// bodyMethod is go-ftw's test for methods that get a Content-Length
// (unanchored alternatives included, as go-ftw writes it).
var bodyMethod = regexp.MustCompile(`^POST|PUT|PATCH|DELETE$`)

// encodeForm URL-encodes form data written unencoded (key=value&…), the
// way go-ftw does: only when the content type is exactly form-urlencoded
// and unescaping would not change the data.
func encodeForm(contentType string, data []byte) []byte {
	if contentType != "application/x-www-form-urlencoded" {
		return data
	}
	unesc, err := url.QueryUnescape(string(data))
	if err != nil || unesc != string(data) {
		return data
	}
	var b bytes.Buffer
	for part := range strings.SplitSeq(string(data), "&") {
		k, v, ok := strings.Cut(part, "=")
		b.WriteString(url.QueryEscape(k))
		if ok {
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
		}
		b.WriteByte('&')
	}
	return b.Bytes()[:b.Len()-1]
}
