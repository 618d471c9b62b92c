package scm

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestValidateRefName(t *testing.T) {
	tests := []struct {
		ref string
		ok  bool
	}{
		{"refs/heads/main", true},
		{"refs/heads/feature/x-1.2", true},
		{"refs/tags/v1.0.0", true},
		{"refs/heads/a..b", false},
		{"refs/heads/../../etc/passwd", false},
		{"/etc/passwd", false},
		{"refs/heads/a\x01b", false},
		{"refs/heads/a\x7fb", false},
		{"refs/heads/a b", false},
		{"refs/heads/a~1", false},
		{"refs/heads/a^", false},
		{"refs/heads/a:b", false},
		{"refs/heads/a?", false},
		{"refs/heads/a*", false},
		{"refs/heads/a[", false},
		{`refs/heads/a\b`, false},
		{"refs/heads/.hidden", false},
		{"refs/heads/x.lock", false},
		{"refs/heads/a@{1}", false},
		{"refs/heads//a", false},
		{"refs/heads/a/", false},
		{"refs/heads/a.", false},
		{"heads/main", false},
		{"", false},
		{"refs/heads/" + strings.Repeat("a", 300), false},
		{"refs/heads/\xff", false},
	}
	for _, tt := range tests {
		if err := ValidateRefName(tt.ref); (err == nil) != tt.ok {
			t.Errorf("ValidateRefName(%q) = %v, want ok=%v", tt.ref, err, tt.ok)
		}
	}
}

func TestValidateRepoName(t *testing.T) {
	for _, name := range []string{"..", "a/b", "/etc", "../x", "x\x01", "X", "app.git", "", "api", strings.Repeat("a", 41), "a b", "-a"} {
		if err := ValidateRepoName(name); err == nil {
			t.Errorf("ValidateRepoName(%q) accepted", name)
		}
	}
	for _, name := range []string{"app", "my-app", "app.js", "a_b", "x1"} {
		if err := ValidateRepoName(name); err != nil {
			t.Errorf("ValidateRepoName(%q) = %v", name, err)
		}
	}
}

func TestRulesFor(t *testing.T) {
	ps := []Protection{
		{Pattern: "main", RequirePR: true, RequiredApprovals: 1},
		{Pattern: "release/*", RequiredChecks: []string{"ci"}, AllowDeletion: true},
		{Pattern: "*", RequiredChecks: []string{"lint"}, AllowForcePush: true, AllowDeletion: true},
	}
	tests := []struct {
		branch string
		want   rules
	}{
		{"main", rules{protected: true, patterns: []string{"main", "*"}, requirePR: true, checks: []string{"lint"}, approvals: 1}},
		{"release/1", rules{protected: true, patterns: []string{"release/*"}, checks: []string{"ci"}, allowDeletion: true, allowForcePush: false}},
		{"feature", rules{protected: true, patterns: []string{"*"}, checks: []string{"lint"}, allowForcePush: true, allowDeletion: true}},
		{"release/1/hotfix", rules{allowForcePush: true, allowDeletion: true}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, rulesFor(ps, tt.branch), cmp.AllowUnexported(rules{})); diff != "" {
			t.Errorf("rulesFor(%q) (-want +got):\n%s", tt.branch, diff)
		}
	}
}

func TestParseHookRequest(t *testing.T) {
	old, new := strings.Repeat("a", 40), strings.Repeat("b", 40)
	good := "hook=pre-receive\x00quarantine=/r/objects/tmp_objdir-incoming-x\x00option=secret-bypass=a=b\x00option=end\x00" +
		"updates=" + old + " " + new + " refs/heads/main\n" + zeroID + " " + new + " refs/tags/v1\n\x00end\x00"
	req, err := readHookRequest(bufio.NewReader(strings.NewReader(good + "hook=post-receive\x00updates=\x00end\x00")))
	if err != nil {
		t.Fatal(err)
	}
	want := hookRequest{Hook: "pre-receive", Quarantine: "/r/objects/tmp_objdir-incoming-x", Options: []string{"secret-bypass=a=b", "end"},
		Updates: []refUpdate{{old, new, "refs/heads/main"}, {zeroID, new, "refs/tags/v1"}}}
	if diff := cmp.Diff(want, req); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{
		"",
		"hook=pre-receive\x00",
		"hook=pre-receive\x00end\x00",
		"hook=pre-push\x00updates=\x00end\x00",
		"hook=pre-receive\x00updates=xyz\x00end\x00",
		"hook=pre-receive\x00updates=" + old + " " + new + " refs/heads/a..b\n\x00end\x00",
		"hook=pre-receive\x00bogus\x00updates=\x00end\x00",
		"hook=pre-receive\x00updates=\x00updates=\x00end\x00",
		"hook=pre-receive\x00option=" + strings.Repeat("x", maxOptionLen+1) + "\x00updates=\x00end\x00",
	} {
		if _, err := readHookRequest(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseHookRequest(f *testing.F) {
	f.Add([]byte("hook=pre-receive\x00quarantine=/q\x00option=x\x00updates=" + strings.Repeat("a", 40) + " " + zeroID + " refs/heads/main\n\x00end\x00"))
	f.Add([]byte("hook=post-receive\x00updates=\x00end\x00"))
	f.Add([]byte("end\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := readHookRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		if req.Hook != "pre-receive" && req.Hook != "post-receive" {
			t.Fatalf("accepted hook %q", req.Hook)
		}
		for _, u := range req.Updates {
			if ValidateRefName(u.Ref) != nil || !hexID(u.Old) || !hexID(u.New) {
				t.Fatalf("accepted update %+v", u)
			}
		}
	})
}

func FuzzValidateRefName(f *testing.F) {
	for _, s := range []string{"refs/heads/main", "refs/heads/a..b", "refs/tags/v1", "refs/heads/\x00", "refs/heads/x.lock/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		if ValidateRefName(ref) != nil {
			return
		}
		if strings.Contains(ref, "..") || strings.ContainsAny(ref, " ~^:?*[\\\x00\n") || !utf8.ValidString(ref) || !strings.HasPrefix(ref, "refs/") {
			t.Fatalf("accepted %q", ref)
		}
	})
}

func FuzzValidatePattern(f *testing.F) {
	for _, s := range []string{"main", "release/*", "[", "a..b", "*"} {
		f.Add(s, "main")
	}
	f.Fuzz(func(t *testing.T, p, branch string) {
		if ValidatePattern(p) != nil {
			return
		}
		_ = matchPattern(p, branch) // must not panic
	})
}

func TestParseDiff(t *testing.T) {
	text := `diff --git a/a.go b/a.go
index 1111111..2222222 100644
--- a/a.go
+++ b/a.go
@@ -1,3 +1,4 @@ package a
 package a
-var x = 1
+var x = 2
+var y = 3
 
diff --git a/new file.txt b/new file.txt
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/new file.txt
@@ -0,0 +1 @@
+hello
diff --git a/old.txt b/renamed.txt
similarity index 90%
rename from old.txt
rename to renamed.txt
diff --git "a/t\303\251st\tx" "b/t\303\251st\tx"
deleted file mode 100644
--- "a/t\303\251st\tx"
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/img.png b/img.png
Binary files a/img.png and b/img.png differ
`
	d := ParseDiff(text)
	type file struct {
		Old, New, Status string
		Add, Del         int
		Binary           bool
	}
	var got []file
	for _, f := range d.Files {
		got = append(got, file{f.OldPath, f.NewPath, f.Status, f.Added, f.Deleted, f.Binary})
	}
	want := []file{
		{"a.go", "a.go", FileModified, 2, 1, false},
		{"new file.txt", "new file.txt", FileAdded, 1, 0, false},
		{"old.txt", "renamed.txt", FileRenamed, 0, 0, false},
		{"tést\tx", "tést\tx", FileDeleted, 0, 1, false},
		{"img.png", "img.png", FileModified, 0, 0, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	lines := d.Files[0].Hunks[0].Lines
	if len(lines) != 5 || lines[2] != (DiffLine{Kind: '+', New: 2, Text: "var x = 2"}) || lines[4] != (DiffLine{Kind: ' ', Old: 3, New: 4}) {
		t.Errorf("hunk lines = %+v", lines)
	}
	if !d.HasLine("a.go", "new", 3) || !d.HasLine("a.go", "old", 2) || d.HasLine("a.go", "new", 9) {
		t.Error("HasLine disagrees with the hunk")
	}
}

func FuzzParseDiff(f *testing.F) {
	f.Add("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n c\n")
	f.Add("diff --git \"a/\\303\" \"b/\\303\"\n@@ -99999999999 +1 @@\n+x\n")
	f.Add("@@ -1 +1 @@\n+orphan\n")
	f.Fuzz(func(t *testing.T, s string) {
		d := ParseDiff(s)
		if len(d.Files) > maxDiffFiles {
			t.Fatalf("%d files", len(d.Files))
		}
		for _, fd := range d.Files {
			n := 0
			for _, h := range fd.Hunks {
				n += len(h.Lines)
			}
			if n > maxDiffFileLines {
				t.Fatalf("%d lines in one file", n)
			}
		}
	})
}
