package config

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string // substring; "" means valid
	}{
		{"default is valid", func(*Config) {}, ""},
		{"postgres store", func(c *Config) { c.Store = "postgres://u:p@h/db" }, ""},
		{"unknown store", func(c *Config) { c.Store = "mysql://x" }, "store:"},
		{"bad addr", func(c *Config) { c.Addr = "8080" }, "addr:"},
		{"url with path", func(c *Config) { c.URL = "https://x.example/sub" }, "url:"},
		{"url bad scheme", func(c *Config) { c.URL = "ftp://x.example" }, "url:"},
		{"empty data", func(c *Config) { c.DataDir = "" }, "data:"},
		{"idle above absolute", func(c *Config) { c.Session.IdleTimeout = 48 * c.Session.AbsoluteTimeout }, "session.idle-timeout"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, "log-level"},
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
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPublicURL(t *testing.T) {
	c := Default()
	if got := c.PublicURL("127.0.0.1:8080"); got != "https://localhost:8080" {
		t.Errorf("PublicURL = %q", got)
	}
	c.TLS = false
	if got := c.PublicURL("0.0.0.0:9000"); got != "http://localhost:9000" {
		t.Errorf("PublicURL = %q", got)
	}
	c.URL = "https://rampart.example.com/"
	if got := c.PublicURL("0.0.0.0:9000"); got != "https://rampart.example.com" {
		t.Errorf("PublicURL = %q", got)
	}
}
