package gitssh

import (
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		cmd, service, org, name string
		ok                      bool
	}{
		{"git-upload-pack 'acme/app.git'", "git-upload-pack", "acme", "app", true},
		{"git-receive-pack '/acme/app.git'", "git-receive-pack", "acme", "app", true},
		{"git-upload-pack acme/app", "git-upload-pack", "acme", "app", true},
		{"git-upload-pack '../etc/passwd'", "", "", "", false},
		{"git-upload-pack 'acme/../../x.git'", "", "", "", false},
		{"git-upload-pack '/etc/passwd'", "git-upload-pack", "etc", "passwd", true}, // a name, never a path on disk
		{"git-upload-pack '/etc/ssh/key'", "", "", "", false},
		{"git-upload-pack 'acme/a\x01b.git'", "", "", "", false},
		{"git-upload-pack 'acme/app.git'; rm -rf /", "", "", "", false},
		{"git-upload-pack 'acme/app", "", "", "", false},
		{"git-upload-archive 'acme/app.git'", "", "", "", false},
		{"sh -c id", "", "", "", false},
		{"git-upload-pack", "", "", "", false},
		{"git-upload-pack 'a'\\''b/c'", "", "", "", false},
	}
	for _, tt := range tests {
		s, o, n, err := ParseCommand(tt.cmd)
		if (err == nil) != tt.ok || s != tt.service || o != tt.org || n != tt.name {
			t.Errorf("ParseCommand(%q) = %q %q %q %v, want %q %q %q ok=%v", tt.cmd, s, o, n, err, tt.service, tt.org, tt.name, tt.ok)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"git-upload-pack 'acme/app.git'", "git-receive-pack '/a/b'", "git-upload-pack 'a'\\''b'", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		_, org, name, err := ParseCommand(cmd)
		if err != nil {
			return
		}
		for _, s := range []string{org, name} {
			if s == "" || strings.ContainsAny(s, "/\\'\x00 ") || strings.Contains(s, "..") {
				t.Fatalf("ParseCommand(%q) gave %q/%q", cmd, org, name)
			}
		}
	})
}
