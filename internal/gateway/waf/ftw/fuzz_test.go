package ftw

import (
	"bytes"
	"testing"
)

// FuzzParse: test files are parsed or refused, never a panic; requests
// of parsed tests can always be built.
func FuzzParse(f *testing.F) {
	f.Add([]byte("rule_id: 920100\ntests:\n  - test_id: 1\n    stages:\n      - input:\n          method: GET\n          uri: /\n          headers: {Host: localhost, User-Agent: x}\n        output:\n          log: {expect_ids: [920100]}\n"))
	f.Add([]byte("rule_id: 1\ntests:\n  - test_id: 2\n    stages:\n      - input:\n          data: '{{ \"1\" | repeat 10 }}'\n          headers: {Content-Type: application/x-www-form-urlencoded}\n        output: {status: 400}\n"))
	f.Add([]byte("rule_id: 1\ntests:\n  - test_id: 3\n    stages:\n      - input: {encoded_request: 'R0VUIC8gSFRUUC8xLjENCg0K'}\n        output: {expect_error: true}\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		for _, tt := range file.Tests {
			for _, s := range tt.Stages {
				if req := s.Input.Request(); s.Input.EncodedRequest == nil && !bytes.Contains(req, []byte("\r\n\r\n")) {
					t.Fatalf("request without a header end: %q", req)
				}
			}
		}
	})
}

func TestRequest_BuildsLikeGoFTW(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"headers sorted, connection close added", Input{Method: "GET", URI: "/", Version: "HTTP/1.1", AutocompleteHeaders: true,
			Headers: []Header{{"User-Agent", "x"}, {"Host", "localhost"}}},
			"GET / HTTP/1.1\r\nConnection: close\r\nHost: localhost\r\nUser-Agent: x\r\n\r\n"},
		{"form data encoded with length", Input{Method: "POST", URI: "/post", Version: "HTTP/1.1", AutocompleteHeaders: true,
			Data: []byte("a=1 2&b=<x>")},
			"POST /post HTTP/1.1\r\nConnection: close\r\nContent-Length: 15\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\na=1+2&b=%3Cx%3E"},
		{"no autocomplete: as written", Input{Method: "POST", URI: "/", Version: "HTTP/1.0", Data: []byte("x=%41"),
			Headers: []Header{{"Host", "h"}}},
			"POST / HTTP/1.0\r\nHost: h\r\n\r\nx=%41"},
		{"encoded request sent as is", Input{EncodedRequest: []byte("GET /raw HTTP/1.1\r\n\r\n")}, "GET /raw HTTP/1.1\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.in.Request()); got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}
