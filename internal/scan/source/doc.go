// Package source is where the content that scanners read comes from: a
// directory, a git repository's history or an OCI image. A Source walks
// its target and hands over Files (a slash-separated path, the content
// and where it came from); what it cannot read — files over the size
// limit, binary files, unreadable ones — it reports as notes and goes
// on. Only a problem with the target itself (a missing directory, a bad
// revision, a corrupt image) is an error.
//
// # Directories
//
// Dir walks a tree without following symbolic links (a link's target is
// scanned where it lies inside the root, under its own path; links out of
// the root are never read), skips .git, special files, files over
// Options.MaxFileSize (10 MiB by default) and binary files (a NUL byte in
// the first 8000 bytes, as git decides).
//
// # Git histories
//
// Git reads history with the real git binary and never checks anything
// out. One `git log --raw -c -z --reverse --topo-order` walk lists, commit
// by commit from the oldest, the blobs each commit put at each path
// (merges list only what differs from every parent); the first time a
// blob appears its id goes to one long-running `git cat-file --batch`,
// which reads it straight from the object store. So each distinct blob is
// read once, however many commits, branches or paths hold it, and is
// attributed to the first commit (author, e-mail, date) and path that
// introduced it; a file deleted and added back with the same content is
// not read again. There is no diffing: a changed file is scanned whole,
// and package secrets reports a secret that survives into later versions
// only for the version that introduced it.
//
// GitOptions select history the way push protection needs it: Include
// (default: all refs), Exclude (`--since REV`), and ExcludeRefs to leave
// out everything existing refs already reach, so `Include: NEW, Exclude:
// OLD, ExcludeRefs: true` is exactly what a push brings. When a range is
// scanned, the version of a modified file just before the range is handed
// over as a baseline (File.Baseline): scanners learn its secrets without
// reporting them, so a commit touching a file with an old secret is not
// blamed for it. Revisions are resolved with `git rev-parse --verify` and
// passed on as commit ids: an unknown one is a clear error and none can
// be taken for an option.
//
// # Images
//
// Image opens an OCI image layout directory, an OCI archive (a tar of a
// layout, read in place) or a docker-save tarball, through
// go-containerregistry; FromImage takes an image already at hand (the
// registry's). Layers are read from the top down in one pass each: an
// entry is visible unless an upper layer wrote the same path, deleted it
// (a .wh. whiteout), made a parent directory opaque (.wh..wh..opq) or put
// a non-directory over a parent. So each file is read once, from the
// layer that last wrote it, whose digest its findings carry. FS returns
// the same flattened file system in memory (fs.FS, with ReadDir, Stat,
// ReadFile and ReadLink) for scanners that need random access, such as
// osv-scalibr's OS-package extractors. Limits: MaxFileSize per file,
// MaxLayerSize per layer (uncompressed, against decompression bombs) and
// MaxFSSize for what FS keeps in memory.
package source
