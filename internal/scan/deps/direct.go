package deps

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// maxManifestSize caps the manifests read to tell direct dependencies.
const maxManifestSize = 16 << 20

// directManifests tells which packages of a lockfile are direct
// dependencies, from the manifest beside it: osv-scalibr's lockfile
// extractors list every package but do not say which ones the project
// names itself. The manifests read here are small declaration files
// (package.json, composer.json, Pipfile, pyproject.toml, Cargo.toml) and
// two lockfiles that mark direct dependencies themselves (Gemfile.lock's
// DEPENDENCIES section, NuGet's packages.lock.json); only the dependency
// names are taken from them.
type directManifests struct {
	fsys  fs.FS
	cache map[string]map[string]map[string]bool // dir → ecosystem → key
	notes []report.Note
}

func newDirectManifests(fsys fs.FS) *directManifests {
	return &directManifests{fsys: fsys, cache: map[string]map[string]map[string]bool{}}
}

// names returns the direct dependency keys (see directKey) that the
// manifests of dir declare for an ecosystem.
func (d *directManifests) names(dir, ecosystem string) map[string]bool {
	m, ok := d.cache[dir]
	if !ok {
		m = d.load(dir)
		d.cache[dir] = m
	}
	base, _, _ := strings.Cut(ecosystem, ":")
	return m[base]
}

// manifestReaders maps a manifest file name to its ecosystem and reader.
var manifestReaders = []struct {
	file, ecosystem string
	read            func([]byte) ([]string, error)
}{
	{"package.json", "npm", packageJSONDeps},
	{"composer.json", "Packagist", composerJSONDeps},
	{"Pipfile", "PyPI", pipfileDeps},
	{"pyproject.toml", "PyPI", pyprojectDeps},
	{"Cargo.toml", "crates.io", cargoTOMLDeps},
	{"Gemfile.lock", "RubyGems", gemfileLockDeps},
	{"gems.locked", "RubyGems", gemfileLockDeps},
	{"packages.lock.json", "NuGet", nugetLockDeps},
}

func (d *directManifests) load(dir string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, mr := range manifestReaders {
		p := path.Join(dir, mr.file)
		b, err := readSmall(d.fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var names []string
		if err == nil {
			names, err = mr.read(b)
		}
		if err != nil {
			d.notes = append(d.notes, report.Note{Path: p, Message: "cannot tell direct dependencies: " + err.Error()})
			continue
		}
		if out[mr.ecosystem] == nil {
			out[mr.ecosystem] = map[string]bool{}
		}
		for _, n := range names {
			out[mr.ecosystem][directKey(mr.ecosystem, n)] = true
		}
	}
	return out
}

func readSmall(fsys fs.FS, name string) ([]byte, error) {
	st, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	if st.Size() > maxManifestSize {
		return nil, fmt.Errorf("%d bytes is over the %d byte limit", st.Size(), maxManifestSize)
	}
	return fs.ReadFile(fsys, name)
}

// directKey is the form in which manifest and lockfile names are compared:
// registries that ignore case or treat separators alike compare so.
func directKey(ecosystem, name string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	name = strings.TrimSpace(name)
	switch base {
	case "PyPI":
		n := strings.ToLower(name)
		n = strings.NewReplacer("_", "-", ".", "-").Replace(n)
		for strings.Contains(n, "--") {
			n = strings.ReplaceAll(n, "--", "-")
		}
		return n
	case "crates.io":
		return strings.ReplaceAll(strings.ToLower(name), "_", "-")
	case "NuGet", "Packagist":
		return strings.ToLower(name)
	}
	return name
}

func keysOf(maps ...map[string]any) []string {
	var out []string
	for _, m := range maps {
		for k := range m {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// packageJSONDeps lists the packages a package.json depends on.
func packageJSONDeps(b []byte) ([]string, error) {
	var m struct {
		Dependencies         map[string]any `json:"dependencies"`
		DevDependencies      map[string]any `json:"devDependencies"`
		OptionalDependencies map[string]any `json:"optionalDependencies"`
		PeerDependencies     map[string]any `json:"peerDependencies"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return keysOf(m.Dependencies, m.DevDependencies, m.OptionalDependencies, m.PeerDependencies), nil
}

// composerJSONDeps lists the packages a composer.json requires, leaving
// out the platform (php, ext-…, lib-…).
func composerJSONDeps(b []byte) ([]string, error) {
	var m struct {
		Require    map[string]any `json:"require"`
		RequireDev map[string]any `json:"require-dev"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keysOf(m.Require, m.RequireDev) {
		if strings.Contains(k, "/") {
			out = append(out, k)
		}
	}
	return out, nil
}

// pipfileDeps lists the packages of a Pipfile.
func pipfileDeps(b []byte) ([]string, error) {
	var m struct {
		Packages    map[string]any `toml:"packages"`
		DevPackages map[string]any `toml:"dev-packages"`
	}
	if _, err := toml.Decode(string(b), &m); err != nil {
		return nil, err
	}
	return keysOf(m.Packages, m.DevPackages), nil
}

// pep508Name returns the distribution name at the start of a PEP 508
// requirement ("requests[socks]>=2.0; python_version>'3'" → requests).
func pep508Name(req string) string {
	req = strings.TrimSpace(req)
	end := 0
	for end < len(req) {
		c := req[end]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || (end > 0 && (c == '-' || c == '_' || c == '.')) {
			end++
			continue
		}
		break
	}
	return req[:end]
}

// pyprojectDeps lists the packages a pyproject.toml depends on: PEP 621
// dependencies and optional-dependencies, PEP 735 dependency-groups,
// uv's dev-dependencies and Poetry's dependency tables.
func pyprojectDeps(b []byte) ([]string, error) {
	var m struct {
		Project struct {
			Dependencies         []string            `toml:"dependencies"`
			OptionalDependencies map[string][]string `toml:"optional-dependencies"`
		} `toml:"project"`
		DependencyGroups map[string][]any `toml:"dependency-groups"`
		Tool             struct {
			UV struct {
				DevDependencies []string `toml:"dev-dependencies"`
			} `toml:"uv"`
			Poetry struct {
				Dependencies    map[string]any `toml:"dependencies"`
				DevDependencies map[string]any `toml:"dev-dependencies"`
				Group           map[string]struct {
					Dependencies map[string]any `toml:"dependencies"`
				} `toml:"group"`
			} `toml:"poetry"`
		} `toml:"tool"`
	}
	if _, err := toml.Decode(string(b), &m); err != nil {
		return nil, err
	}
	var reqs []string
	reqs = append(reqs, m.Project.Dependencies...)
	for _, g := range m.Project.OptionalDependencies {
		reqs = append(reqs, g...)
	}
	for _, g := range m.DependencyGroups {
		for _, r := range g {
			if s, ok := r.(string); ok { // tables are {include-group = …}
				reqs = append(reqs, s)
			}
		}
	}
	reqs = append(reqs, m.Tool.UV.DevDependencies...)
	var out []string
	for _, r := range reqs {
		if n := pep508Name(r); n != "" {
			out = append(out, n)
		}
	}
	poetry := []map[string]any{m.Tool.Poetry.Dependencies, m.Tool.Poetry.DevDependencies}
	for _, g := range m.Tool.Poetry.Group {
		poetry = append(poetry, g.Dependencies)
	}
	for _, k := range keysOf(poetry...) {
		if k != "python" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// cargoTOMLDeps lists the crates a Cargo.toml depends on, including a
// workspace's shared dependencies. A renamed dependency
// (alias = { package = "real" }) counts under its real name.
func cargoTOMLDeps(b []byte) ([]string, error) {
	type deps = map[string]any
	var m struct {
		Dependencies      deps `toml:"dependencies"`
		DevDependencies   deps `toml:"dev-dependencies"`
		BuildDependencies deps `toml:"build-dependencies"`
		Workspace         struct {
			Dependencies deps `toml:"dependencies"`
		} `toml:"workspace"`
		Target map[string]struct {
			Dependencies      deps `toml:"dependencies"`
			DevDependencies   deps `toml:"dev-dependencies"`
			BuildDependencies deps `toml:"build-dependencies"`
		} `toml:"target"`
	}
	if _, err := toml.Decode(string(b), &m); err != nil {
		return nil, err
	}
	all := []deps{m.Dependencies, m.DevDependencies, m.BuildDependencies, m.Workspace.Dependencies}
	for _, t := range m.Target {
		all = append(all, t.Dependencies, t.DevDependencies, t.BuildDependencies)
	}
	var out []string
	for _, d := range all {
		for k, v := range d {
			if t, ok := v.(map[string]any); ok {
				if p, ok := t["package"].(string); ok && p != "" {
					k = p
				}
			}
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// gemfileLockDeps lists the gems of a Gemfile.lock's DEPENDENCIES section:
// the ones the Gemfile names.
func gemfileLockDeps(b []byte) ([]string, error) {
	var out []string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), maxManifestSize)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if !strings.HasPrefix(line, " ") {
			in = line == "DEPENDENCIES"
			continue
		}
		if !in || strings.HasPrefix(line, "   ") {
			continue // outside the section, or a nested line
		}
		name := strings.TrimSpace(line)
		if i := strings.IndexAny(name, " !("); i >= 0 {
			name = name[:i]
		}
		if name != "" {
			out = append(out, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// nugetLockDeps lists the packages a packages.lock.json marks "Direct".
func nugetLockDeps(b []byte) ([]string, error) {
	var m struct {
		Dependencies map[string]map[string]struct {
			Type string `json:"type"`
		} `json:"dependencies"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	var out []string
	for _, fw := range m.Dependencies {
		for name, d := range fw {
			if strings.EqualFold(d.Type, "Direct") {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
