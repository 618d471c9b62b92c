// Command depscan is the Rampart side of bench/deps.sh: it runs the
// dependency scan of `rampart scan` (package deps's inventory, matched
// against a local advisory database by package advisory) on directories,
// and helps the script feed osv-scanner the same advisories and compare
// what both report.
//
//	depscan scan -db FILE DIR...   inventory and match each DIR; print the advisory ids found
//	depscan mkzip SRCDIR OUT.zip   zip the OSV JSON files of SRCDIR the way OSV's all.zip is laid out
//	depscan osv-ids FILE           print the advisory ids of an osv-scanner JSON report
//
// Ids are printed one per line, sorted; scan also prints the package count
// on stderr.
package main

import (
	"archive/zip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/rampartsec/rampart/internal/scan/advisory"
	"github.com/rampartsec/rampart/internal/scan/deps"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "scan":
		err = scan(os.Args[2:])
	case "mkzip":
		if len(os.Args) != 4 {
			usage()
		}
		err = mkzip(os.Args[2], os.Args[3])
	case "osv-ids":
		if len(os.Args) != 3 {
			usage()
		}
		err = osvIDs(os.Args[2])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "depscan:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: depscan scan -db FILE DIR... | mkzip SRCDIR OUT.zip | osv-ids FILE")
	os.Exit(2)
}

func scan(args []string) error {
	fl := flag.NewFlagSet("scan", flag.ExitOnError)
	dbPath := fl.String("db", "", "advisory database")
	fl.Parse(args)
	ctx := context.Background()
	db, err := advisory.Open(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ids := map[string]bool{}
	npkgs := 0
	for _, dir := range fl.Args() {
		pkgs, notes, err := deps.Inventory(ctx, os.DirFS(dir), deps.Options{Root: dir})
		if err != nil {
			return err
		}
		for _, n := range notes {
			fmt.Fprintf(os.Stderr, "note: %s: %s\n", n.Path, n.Message)
		}
		npkgs += len(pkgs)
		fs, err := db.Match(ctx, pkgs)
		if err != nil {
			return err
		}
		for _, f := range fs {
			ids[f.RuleID] = true
		}
	}
	fmt.Fprintf(os.Stderr, "%d packages\n", npkgs)
	return printIDs(ids)
}

func printIDs(ids map[string]bool) error {
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	sort.Strings(list)
	for _, id := range list {
		if _, err := fmt.Println(id); err != nil {
			return err
		}
	}
	return nil
}

func mkzip(src, out string) error {
	files, err := filepath.Glob(filepath.Join(src, "*.json"))
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, p := range files {
		w, err := zw.Create(filepath.Base(p))
		if err != nil {
			return err
		}
		r, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, r)
		r.Close()
		if err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// osvIDs reads osv-scanner's --format json report.
func osvIDs(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r struct {
		Results []struct {
			Packages []struct {
				Vulnerabilities []struct {
					ID string `json:"id"`
				} `json:"vulnerabilities"`
			} `json:"packages"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	ids := map[string]bool{}
	for _, res := range r.Results {
		for _, p := range res.Packages {
			for _, v := range p.Vulnerabilities {
				ids[v.ID] = true
			}
		}
	}
	return printIDs(ids)
}
