package deps

import (
	"testing"
	"testing/fstest"
)

// FuzzManifestReaders feeds arbitrary bytes to every manifest reader that
// tells direct dependencies: an error is fine, a panic is not, and names
// are never empty.
func FuzzManifestReaders(f *testing.F) {
	f.Add([]byte(`{"dependencies":{"a":"1"},"devDependencies":{"b":"2"},"require":{"php":"8","x/y":"1"}}`))
	f.Add([]byte("[packages]\nrequests = \"*\"\n[dev-packages]\npytest = \"*\"\n"))
	f.Add([]byte("[project]\ndependencies = [\"PyYAML>=5\", \"requests[socks] ; python_version>'3'\"]\n[tool.poetry.group.dev.dependencies]\nblack = \"*\"\n"))
	f.Add([]byte("[dependencies]\nserde = { version = \"1\", package = \"serde_real\" }\n[target.'cfg(unix)'.dependencies]\nlibc = \"0.2\"\n"))
	f.Add([]byte("GEM\n  specs:\n    rack (2.2.3)\n\nDEPENDENCIES\n  rack!\n  rails (~> 7)\n"))
	f.Add([]byte(`{"version":1,"dependencies":{"net6.0":{"A":{"type":"Direct"},"B":{"type":"Transitive"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mr := range manifestReaders {
			names, err := mr.read(data)
			if err != nil {
				continue
			}
			for _, n := range names {
				if mr.file != "package.json" && mr.file != "composer.json" && mr.file != "Pipfile" &&
					mr.file != "Cargo.toml" && mr.file != "packages.lock.json" && n == "" {
					t.Fatalf("%s: empty name from %q", mr.file, data)
				}
				_ = directKey(mr.ecosystem, n)
			}
		}
	})
}

// FuzzInventory hands arbitrary bytes to the extractors as each kind of
// lockfile and package database: a broken file is a note, never a panic or
// a failed inventory.
func FuzzInventory(f *testing.F) {
	f.Add(uint8(0), []byte("module m\n\nrequire a.b/c v1.0.0\n"))
	f.Add(uint8(1), []byte(`{"lockfileVersion":3,"packages":{"node_modules/x":{"version":"1.0.0"}}}`))
	f.Add(uint8(13), []byte("Package: a\nStatus: install ok installed\nVersion: 1\n"))
	names := []string{"go.mod", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "requirements.txt",
		"poetry.lock", "Pipfile.lock", "uv.lock", "pom.xml", "Cargo.lock", "Gemfile.lock", "composer.lock",
		"packages.lock.json", "var/lib/dpkg/status", "lib/apk/db/installed", "package.json"}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		name := names[int(which)%len(names)]
		fsys := fstest.MapFS{name: &fstest.MapFile{Data: data}}
		if name == "package.json" {
			fsys["yarn.lock"] = &fstest.MapFile{Data: []byte("a@^1:\n  version \"1.0.0\"\n")}
		}
		if _, _, err := Inventory(t.Context(), fsys, Options{}); err != nil {
			t.Fatalf("inventory failed: %v", err)
		}
	})
}
