// Package secrets finds credentials in content: Rampart's own secret
// scanning engine, used by `rampart scan` on directories, git histories
// and images, by push protection and by the registry.
//
// # Rules
//
// A Rule has an id, a description, an RE2 regex whose capture group holds
// the secret, keywords, a minimum Shannon entropy, a severity, the paths
// it applies to, allowlists (paths, commits, regexes over the secret, the
// match or the line, stop words) and an optional Check (Rampart's own
// API tokens carry a CRC-32 checksum, so a random rpt_ string is not
// reported). DefaultRules returns the rules we wrote from the providers'
// documented token formats: cloud keys, VCS and CI tokens, package
// registries, chat and webhooks, payments, mail, AI providers, private
// keys (PEM, OpenSSH, PGP, PuTTY, age, WireGuard, kubeconfig), JWTs,
// connection strings with passwords and generic high-entropy
// assignments. Generic rules are catch-alls: where a specific rule found
// the same secret, their finding is dropped.
//
// ParseGitleaksTOML loads gitleaks' rule files, so teams keep their custom
// rules; `[extend] useDefault = true` adds Rampart's defaults (not
// gitleaks'). Unknown fields and invalid regexes are errors naming the
// rule.
//
// # Engine
//
// An Engine compiles every rule's keywords into one Aho–Corasick
// automaton. Scanning a content runs the automaton once over it; only the
// lines around keyword hits (a window per hit, merged per rule, clipped
// on very long lines) meet a rule's regex, so most bytes never meet a
// regex at all. A rule's regex is written so that its match lies on the
// line of one of its keywords (ScopeLine), or spans Reach bytes past it
// for multi-line secrets such as PEM blocks. Rules loaded from gitleaks
// files keep gitleaks' semantics (ScopeContent: the regex runs over the
// whole content when a keyword appears anywhere in it).
//
// The automaton is our own code rather than a library because it is the
// one loop every byte goes through, and the libraries do more than we
// need per byte: gitleaks lower-cases a copy of every content and walks a
// trie with failure links, collecting matches into slices. Ours is a
// dense DFA over byte classes (bytes found in no keyword share one
// class; upper- and lower-case letters share theirs, so matching is
// case-insensitive without copying), states renumbered so that one
// comparison per byte says whether a keyword ended: one table lookup per
// byte, no allocation.
//
// A finding never holds the whole secret: Secret.Redacted keeps at most
// its first four characters (a quarter of a short one) and "…", and the
// Fingerprint hashes rule, path, commit or layer and position, not the
// secret. Lines and columns are 1-based; columns count characters (runes)
// and EndCol is the column just past the secret. A line containing
// "rampart:allow" (or gitleaks' "gitleaks:allow") reports nothing.
//
// # Sources
//
// ScanSource scans a source.Source (a directory, a git history, an image)
// on several goroutines and attaches each file's origin (commit, author,
// date, layer) to its findings. In a git history a secret is reported once,
// for the commit that introduced it, even though every later version of
// its file holds it too; when only a range of history is scanned, the
// versions of files just before the range are baselines whose secrets are
// not reported again.
package secrets
