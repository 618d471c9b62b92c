package config

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzValidate: a configuration that passes Validate can be run as it is:
// every field is in range, and the public URL is a clean base that links
// can be appended to. One that fails names each field at fault.
func FuzzValidate(f *testing.F) {
	d := Default()
	f.Add(d.DataDir, d.Store, d.Addr, d.URL, d.LogLevel, int64(d.Session.IdleTimeout), int64(d.Session.AbsoluteTimeout),
		d.Limits.MaxBodyBytes, int64(d.Limits.ShutdownGrace))
	f.Add("data", "postgres://u:p@h/db", "[::1]:0", "https://rampart.example.com/", "debug", int64(time.Hour), int64(time.Hour), int64(1024), int64(time.Second))
	f.Add("", "mysql://x", "8080", "ftp://x", "loud", int64(0), int64(-1), int64(0), int64(0))
	f.Add("d", "sqlite:/x.db", ":8080", "https://x.example?q=1", "info", int64(1), int64(2), int64(4096), int64(-time.Second))
	f.Add("d", "", "h:1", "https://x.example/#frag", "warn", int64(1), int64(2), int64(4096), int64(1))
	f.Add("d", "", "h:1", "https://user:pw@x.example", "error", int64(1), int64(2), int64(4096), int64(1))
	f.Add("d", "", "h:1", "https://x.example/%2F", "error", int64(1), int64(2), int64(4096), int64(1))
	f.Add("d", "", "h:1", "http://x.example:80//", "error", int64(1), int64(2), int64(4096), int64(1))
	f.Fuzz(func(t *testing.T, dataDir, store, addr, publicURL, level string, idle, absolute, maxBody, grace int64) {
		c := Default()
		c.DataDir, c.Store, c.Addr, c.URL, c.LogLevel = dataDir, store, addr, publicURL, level
		c.Session.IdleTimeout, c.Session.AbsoluteTimeout = time.Duration(idle), time.Duration(absolute)
		c.Limits.MaxBodyBytes, c.Limits.ShutdownGrace = maxBody, time.Duration(grace)
		err := c.Validate()
		if err != nil {
			var joined interface{ Unwrap() []error }
			errs := []error{err}
			if errors.As(err, &joined) {
				errs = joined.Unwrap()
			}
			for _, e := range errs {
				var fe *FieldError
				if !errors.As(e, &fe) || fe.Field == "" || !strings.HasPrefix(e.Error(), fe.Field+": ") {
					t.Fatalf("error %q does not name its field", e)
				}
			}
			return
		}
		switch {
		case c.DataDir == "":
			t.Fatal("accepted an empty data directory")
		case !strings.HasPrefix(c.StoreURL(), "sqlite:") && !strings.HasPrefix(c.StoreURL(), "postgres://") && !strings.HasPrefix(c.StoreURL(), "postgresql://"):
			t.Fatalf("accepted store %q", c.Store)
		case c.LogLevel != "debug" && c.LogLevel != "info" && c.LogLevel != "warn" && c.LogLevel != "error":
			t.Fatalf("accepted log level %q", c.LogLevel)
		case c.Session.IdleTimeout <= 0 || c.Session.AbsoluteTimeout < c.Session.IdleTimeout:
			t.Fatalf("accepted session timeouts %v / %v", c.Session.IdleTimeout, c.Session.AbsoluteTimeout)
		case c.Limits.MaxBodyBytes < 1024:
			t.Fatalf("accepted max body %d", c.Limits.MaxBodyBytes)
		case c.Limits.ShutdownGrace <= 0:
			t.Fatalf("accepted shutdown grace %v: in-flight requests would be cut off", c.Limits.ShutdownGrace)
		}
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			t.Fatalf("accepted addr %q: %v", c.Addr, err)
		}
		if c.URL == "" {
			return
		}
		pub := c.PublicURL(c.Addr)
		u, err := url.Parse(pub)
		if err != nil {
			t.Fatalf("accepted URL %q: PublicURL %q does not parse: %v", c.URL, pub, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
			u.ForceQuery || u.EscapedPath() != "" || strings.HasSuffix(pub, "/") {
			t.Fatalf("accepted URL %q: PublicURL %q is not a bare scheme://host[:port]", c.URL, pub)
		}
		// Links are built by appending paths.
		l, err := url.Parse(pub + "/login?next=%2F")
		if err != nil || l.Host != u.Host || l.Path != "/login" {
			t.Fatalf("accepted URL %q: %q + /login gives %v, %v", c.URL, pub, l, err)
		}
	})
}

func TestValidate_PublicURLAndShutdownGrace(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // "" means valid
	}{
		{"bare URL", func(c *Config) { c.URL = "https://rampart.example.com:8443" }, ""},
		{"URL with slash", func(c *Config) { c.URL = "https://rampart.example.com/" }, ""},
		{"URL with query", func(c *Config) { c.URL = "https://rampart.example.com?x=1" }, "url: must be only scheme://host[:port]"},
		{"URL with empty query", func(c *Config) { c.URL = "https://rampart.example.com?" }, "url: must be only"},
		{"URL with fragment", func(c *Config) { c.URL = "https://rampart.example.com#top" }, "url: must be only"},
		{"URL with empty fragment", func(c *Config) { c.URL = "https://rampart.example.com#" }, "url: must be only"},
		{"URL with user", func(c *Config) { c.URL = "https://admin:secret@rampart.example.com" }, "url: must be only"},
		{"URL with encoded slash", func(c *Config) { c.URL = "https://rampart.example.com/%2F" }, "url: must not have a path"},
		{"unparseable URL", func(c *Config) { c.URL = "https://admin:secret@host:badport" }, `url: invalid URL: invalid port ":badport"`},
		{"no shutdown grace", func(c *Config) { c.Limits.ShutdownGrace = 0 }, "limits.shutdown-grace: must be positive"},
		{"negative shutdown grace", func(c *Config) { c.Limits.ShutdownGrace = -time.Second }, "limits.shutdown-grace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error repeats a password: %v", err)
			}
		})
	}
}
