// Package deps inventories the third-party packages of a directory or an
// image: what package scan matches against the advisory database and
// writes into SBOMs.
//
// Inventory walks any fs.FS (a checkout through os.DirFS, or the flattened
// file system of an OCI image) and hands each file to the
// osv-scalibr extractors that claim it: lockfiles and manifests of Go,
// npm, PyPI, Maven, Cargo, RubyGems, Composer and NuGet, Go binaries and
// Java archives, and the dpkg, apk and RPM package databases of OS images.
// Rampart writes no lockfile parser of its own: osv-scalibr's are
// maintained against the real formats by the OSV project. Rampart does its
// own walk (rather than osv-scalibr's) so that each unreadable or broken
// file becomes a report.Note naming it while every other file still
// counts, so that any fs.FS works, and so that files are extracted in
// parallel.
//
// Each package carries its OSV ecosystem ("Go", "npm", "Debian:12"), its
// purl (with the source package, origin or epoch qualifiers advisory
// matching needs for OS packages), the files it was found in, licenses
// where the package database records them (apk, RPM) and hashes where the
// extractor computes them (SHA-1 of Java archives). The same package found
// in several files is listed once with every location.
//
// Direct says the project names the package itself. Manifests
// (requirements*.txt, pom.xml) only list direct dependencies; go.mod marks
// indirect ones; for the other lockfiles the manifest beside them is read
// for dependency names (package.json, composer.json, Pipfile,
// pyproject.toml, Cargo.toml), or the lockfile's own marking
// (Gemfile.lock's DEPENDENCIES, packages.lock.json's "Direct"). OS
// packages and binaries are never direct.
package deps
