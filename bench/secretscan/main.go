// Command secretscan drives Rampart's secret scanner for bench/secrets.sh
// until `rampart scan` exists: it scans a directory or a git history with
// the default rules, writes a planted-secret corpus, and measures recall
// of Rampart's or gitleaks' findings against the corpus's labels.
//
//	secretscan dir [-max-size N] [-json FILE] [-cpuprofile FILE] PATH
//	secretscan git [-since REV] [-json FILE] [-cpuprofile FILE] PATH
//	secretscan plant [-copies N] [-labels FILE] DIR
//	secretscan recall -labels FILE (-rampart FILE | -gitleaks FILE)
//	secretscan rules                         (lists the default rules)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/secrets"
	"github.com/rampartsec/rampart/internal/scan/secrets/secretstest"
	"github.com/rampartsec/rampart/internal/scan/source"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: secretscan dir|git|plant|recall|rules …")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "dir", "git":
		err = scan(os.Args[1], os.Args[2:])
	case "plant":
		err = plant(os.Args[2:])
	case "recall":
		err = recall(os.Args[2:])
	case "rules":
		for _, r := range secrets.DefaultRules() {
			fmt.Printf("%-36s %-8s %s\n", r.ID, r.Severity, r.Description)
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "secretscan:", err)
		os.Exit(1)
	}
}

func scan(mode string, args []string) error {
	fl := flag.NewFlagSet(mode, flag.ExitOnError)
	maxSize := fl.Int64("max-size", 0, "skip files larger than this many bytes (0: default)")
	since := fl.String("since", "", "git: scan only commits not reachable from this revision")
	jsonOut := fl.String("json", "", "write findings as JSON to this file")
	cpuprofile := fl.String("cpuprofile", "", "write a CPU profile to this file")
	workers := fl.Int("workers", 0, "scanning goroutines (0: GOMAXPROCS)")
	_ = fl.Parse(args)
	if fl.NArg() != 1 {
		return fmt.Errorf("%s needs one path", mode)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	e, err := secrets.New(secrets.DefaultRules())
	if err != nil {
		return err
	}
	var src source.Source
	if mode == "dir" {
		src = source.Dir(fl.Arg(0), source.Options{MaxFileSize: *maxSize})
	} else {
		opts := source.GitOptions{MaxFileSize: *maxSize}
		if *since != "" {
			opts.Exclude = []string{*since}
		}
		src = source.Git(fl.Arg(0), opts)
	}
	findings, notes, stats, err := e.ScanSource(context.Background(), src, *workers)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if *jsonOut != "" {
		b, err := json.MarshalIndent(findings, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("findings=%d files=%d bytes=%d blobs=%d commits=%d skipped=%d notes=%d seconds=%.2f\n",
		len(findings), stats.Files, stats.Bytes, stats.Blobs, stats.Commits, stats.Skipped, len(notes), elapsed.Seconds())
	return nil
}

func plant(args []string) error {
	fl := flag.NewFlagSet("plant", flag.ExitOnError)
	copies := fl.Int("copies", 2, "copies of every template")
	seed := fl.Uint64("seed", 1, "random seed")
	labels := fl.String("labels", "", "write the labels here (default DIR/../planted-labels.json)")
	_ = fl.Parse(args)
	if fl.NArg() != 1 {
		return fmt.Errorf("plant needs a directory")
	}
	c := secretstest.Generate(*seed, *copies)
	if err := c.Write(fl.Arg(0)); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c.Planted, "", "  ")
	if err != nil {
		return err
	}
	if *labels == "" {
		*labels = filepath.Join(filepath.Dir(filepath.Clean(fl.Arg(0))), "planted-labels.json")
	}
	return os.WriteFile(*labels, b, 0o644)
}

// span is a finding's file and lines, whichever tool reported it.
type span struct {
	path       string
	start, end int
	rule       string
}

func recall(args []string) error {
	fl := flag.NewFlagSet("recall", flag.ExitOnError)
	labels := fl.String("labels", "", "labels.json written by plant")
	rampart := fl.String("rampart", "", "findings JSON written by secretscan -json")
	gitleaks := fl.String("gitleaks", "", "gitleaks JSON report")
	root := fl.String("root", "", "gitleaks: the scanned directory, stripped from its paths")
	verbose := fl.Bool("v", false, "list missed secrets")
	_ = fl.Parse(args)
	var planted []secretstest.Planted
	if err := readJSON(*labels, &planted); err != nil {
		return err
	}
	var spans []span
	switch {
	case *rampart != "":
		var fs []report.Finding
		if err := readJSON(*rampart, &fs); err != nil {
			return err
		}
		for _, f := range fs {
			spans = append(spans, span{f.Location.Path, f.Location.StartLine, f.Location.EndLine, f.RuleID})
		}
	case *gitleaks != "":
		var fs []struct {
			File      string
			StartLine int
			EndLine   int
			RuleID    string
		}
		if err := readJSON(*gitleaks, &fs); err != nil {
			return err
		}
		prefix := strings.TrimSuffix(filepath.ToSlash(*root), "/") + "/"
		for _, f := range fs {
			p := strings.TrimPrefix(filepath.ToSlash(f.File), prefix)
			spans = append(spans, span{p, f.StartLine, f.EndLine, f.RuleID})
		}
	default:
		return fmt.Errorf("recall needs -rampart or -gitleaks")
	}
	byPath := map[string][]span{}
	for _, s := range spans {
		byPath[s.path] = append(byPath[s.path], s)
	}
	found := 0
	missedByRule := map[string]int{}
	for _, p := range planted {
		hit := false
		for _, s := range byPath[p.Path] {
			end := max(s.end, s.start)
			if s.start <= p.EndLine && p.Line <= end {
				hit = true
				break
			}
		}
		if hit {
			found++
		} else {
			missedByRule[p.RuleID]++
		}
	}
	fmt.Printf("recall=%d/%d (%.1f%%) findings=%d\n", found, len(planted), 100*float64(found)/float64(max(1, len(planted))), len(spans))
	if *verbose {
		var ids []string
		for id := range missedByRule {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		fmt.Printf("missed (%d types): %s\n", len(ids), strings.Join(ids, " "))
	}
	return nil
}

func readJSON(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}
