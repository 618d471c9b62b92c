// Package scan is Rampart's scanner: the only scanning code the rest of
// Rampart calls. It finds secrets (scan/secrets, an engine of our own),
// vulnerable dependencies (scan/deps: inventory by osv-scalibr's extractors,
// matching against a local OSV advisory database), infrastructure-as-code
// misconfiguration (scan/iac: Rego checks run by embedded OPA) and builds
// software bills of materials (scan/sbom), over three kinds of target: a
// directory, a git repository's whole history, and an OCI image.
//
// Every scanner reports Findings of one shape. A Report collects them with
// the package inventory and Notes about what could not be scanned (an
// unreadable file, a broken lockfile, a file over the size cap): a bad input
// never stops the rest of the scan. Suppressions (.rampart/ignore.yaml)
// mark findings as suppressed with their reason until they expire.
//
// The scanner works offline and without a server: `rampart scan` on a
// developer's machine or in a pre-commit hook uses the same code as the
// platform's push protection, pipelines and registry.
package scan
