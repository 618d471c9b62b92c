package source_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/scan/source"
	"github.com/rampartsec/rampart/internal/scan/source/sourcetest"
)

func day(n int) time.Time { return sourcetest.Day(n) }

// history builds:
//
//	c1 alice   main:    config.env v1, README.md
//	c2 bob     feature: app.py, config.env v2 (v1 plus a line)
//	c3 carol   main:    deletes config.env, adds a binary
//	c4 dave    main:    re-adds config.env v1 (the same blob as c1)
//	c5 erin    main:    merges feature
type history struct {
	repo               *sourcetest.Repo
	c1, c2, c3, c4, c5 string
}

const (
	configV1 = "TOKEN=first-secret\n"
	configV2 = "TOKEN=first-secret\nDEBUG=1\n"
	appPy    = "KEY = 'second-secret'\n"
)

func buildHistory(t testing.TB) history {
	r := sourcetest.NewRepo(t)
	h := history{repo: r}
	h.c1 = r.Commit("alice", day(1), map[string]string{"config.env": configV1, "README.md": "hello\n"})
	r.Git("checkout", "-q", "-b", "feature")
	h.c2 = r.Commit("bob", day(2), map[string]string{"src/app.py": appPy, "config.env": configV2})
	r.Git("checkout", "-q", "main")
	h.c3 = r.Commit("carol", day(3), map[string]string{"config.env": "", "logo.png": "\x89PNG\x00\x01\x02"})
	h.c4 = r.Commit("dave", day(4), map[string]string{"config.env": configV1})
	h.c5 = r.Merge("erin", day(5), "feature")
	return h
}

// produced is what a walk handed over, in order.
type produced struct {
	Path, Content, Commit, Author string
	Baseline                      bool
}

func walkGit(t *testing.T, h history, opts source.GitOptions) ([]produced, []string, int64, int64) {
	t.Helper()
	var got []produced
	stats, notes, err := source.Git(h.repo.Dir, opts).Walk(t.Context(), func(f source.File) error {
		if f.Loc.Path != f.Path {
			t.Errorf("%s: Loc.Path = %q", f.Path, f.Loc.Path)
		}
		got = append(got, produced{f.Path, string(f.Data), f.Loc.Commit, f.Loc.Author, f.Baseline})
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	var ns []string
	for _, n := range notes {
		ns = append(ns, n.Path+": "+n.Message)
	}
	return got, ns, stats.Commits, stats.Blobs
}

func TestGit_EachBlobOnceFromItsFirstCommit(t *testing.T) {
	h := buildHistory(t)
	got, notes, commits, blobs := walkGit(t, h, source.GitOptions{})
	want := []produced{
		{"README.md", "hello\n", h.c1, "alice", false},
		{"config.env", configV1, h.c1, "alice", false},
		{"config.env", configV2, h.c2, "bob", false},
		{"src/app.py", appPy, h.c2, "bob", false},
	}
	sortProduced(got)
	sortProduced(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "logo.png: skipped: binary content") || !strings.Contains(notes[0], h.c3[:12]) {
		t.Errorf("notes = %q, want the binary noted with its commit", notes)
	}
	if commits != 5 {
		t.Errorf("commits = %d, want 5", commits)
	}
	// Every blob of the repository was read exactly once.
	all := strings.Fields(h.repo.Git("cat-file", "--batch-all-objects", "--batch-check=%(objecttype)"))
	if n := int64(len(all) - countNot(all, "blob")); blobs != n {
		t.Errorf("blobs read = %d, repository has %d", blobs, n)
	}

	var dates []time.Time
	_, _, err := source.Git(h.repo.Dir, source.GitOptions{}).Walk(t.Context(), func(f source.File) error {
		if f.Path == "src/app.py" {
			dates = append(dates, f.Loc.Date)
			if f.Loc.AuthorEmail != "bob@example.test" {
				t.Errorf("author e-mail = %q", f.Loc.AuthorEmail)
			}
		}
		return nil
	})
	if err != nil || len(dates) != 1 || !dates[0].Equal(day(2)) {
		t.Errorf("app.py date = %v (err %v), want %v", dates, err, day(2))
	}
}

func countNot(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x != s {
			n++
		}
	}
	return n
}

func sortProduced(p []produced) {
	slices.SortFunc(p, func(a, b produced) int {
		return strings.Compare(a.Path+a.Content+fmt.Sprint(a.Baseline), b.Path+b.Content+fmt.Sprint(b.Baseline))
	})
}

func TestGit_Ranges(t *testing.T) {
	h := buildHistory(t)
	for _, tt := range []struct {
		name    string
		opts    source.GitOptions
		want    []produced
		commits int64
	}{
		{
			name: "feature since the first commit: its version of config.env is the baseline",
			opts: source.GitOptions{Include: []string{"feature"}, Exclude: []string{h.c1}},
			want: []produced{
				{"config.env", configV1, h.c2, "bob", true},
				{"config.env", configV2, h.c2, "bob", false},
				{"src/app.py", appPy, h.c2, "bob", false},
			},
			commits: 1,
		},
		{
			name: "since the feature branch: the re-added file counts as new",
			opts: source.GitOptions{Exclude: []string{"feature"}},
			want: []produced{
				{"config.env", configV1, h.c4, "dave", false},
			},
			commits: 3,
		},
		{
			name: "a push of main from c4 to c5, zero ids ignored",
			opts: source.GitOptions{Include: []string{h.c5}, Exclude: []string{h.c4, strings.Repeat("0", 40)}},
			want: []produced{
				{"config.env", configV1, h.c2, "bob", true},
				{"config.env", configV2, h.c2, "bob", false},
				{"src/app.py", appPy, h.c2, "bob", false},
			},
			commits: 2,
		},
		{
			name:    "new commits that other refs already have are left out",
			opts:    source.GitOptions{Include: []string{h.c5}, Exclude: []string{h.c4}, ExcludeRefs: true},
			want:    nil,
			commits: 0,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, _, commits, _ := walkGit(t, h, tt.opts)
			sortProduced(got)
			sortProduced(tt.want)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			if commits != tt.commits {
				t.Errorf("commits = %d, want %d", commits, tt.commits)
			}
		})
	}
}

func TestGit_Errors(t *testing.T) {
	h := buildHistory(t)
	for _, tt := range []struct {
		name string
		repo string
		opts source.GitOptions
		want string
	}{
		{"unknown revision", h.repo.Dir, source.GitOptions{Exclude: []string{"no-such-branch"}}, `unknown revision "no-such-branch"`},
		{"option as revision", h.repo.Dir, source.GitOptions{Include: []string{"--output=/tmp/x"}}, `invalid revision "--output=/tmp/x"`},
		{"a blob is not a commit", h.repo.Dir, source.GitOptions{Include: []string{h.c1 + ":README.md"}}, "unknown revision"},
		{"not a repository", t.TempDir(), source.GitOptions{}, "is not a git repository"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := source.Git(tt.repo, tt.opts).Walk(t.Context(), func(source.File) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %s", err, tt.want)
			}
		})
	}
}

func TestGit_CallbackErrorStopsTheWalk(t *testing.T) {
	r := sourcetest.NewRepo(t)
	for i := range 50 {
		r.Commit("alice", day(1), map[string]string{fmt.Sprintf("f%d.txt", i): strings.Repeat("line\n", 1000) + fmt.Sprint(i)})
	}
	stop := errors.New("stop")
	calls := 0
	_, _, err := source.Git(r.Dir, source.GitOptions{}).Walk(t.Context(), func(source.File) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("err = %v after %d calls, want stop after 1", err, calls)
	}
}

func TestGit_SizeLimit(t *testing.T) {
	r := sourcetest.NewRepo(t)
	c := r.Commit("alice", day(1), map[string]string{"big.txt": strings.Repeat("a", 5000), "small.txt": "ok\n"})
	got, notes, _, blobs := walkGit(t, history{repo: r}, source.GitOptions{MaxFileSize: 4096})
	if len(got) != 1 || got[0].Path != "small.txt" || blobs != 2 {
		t.Errorf("got %v (%d blobs), want only small.txt of 2 blobs", got, blobs)
	}
	want := fmt.Sprintf("big.txt: skipped: 4.9 KiB is over the 4.0 KiB size limit (blob %.12s, commit %.12s)",
		r.Git("rev-parse", c+":big.txt"), c)
	if len(notes) != 1 || notes[0] != want {
		t.Errorf("notes = %q, want %q", notes, want)
	}
}
