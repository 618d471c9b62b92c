package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rampartsec/rampart/internal/apperr"
)

// writeTree creates files under dir; a value starting with "->" makes a
// symbolic link.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func build(t testing.TB, dir string, opts BuildOptions) *Result {
	t.Helper()
	opts.ContextDir = dir
	if opts.Platform == "" {
		opts.Platform = "linux/amd64"
	}
	res, err := Build(t.Context(), opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return res
}

// fileInfo is what a user sees of a file in the image.
type fileInfo struct {
	Type     byte
	Mode     int64
	UID, GID int
	Content  string
	Link     string
}

// imageFiles flattens img.
func imageFiles(t testing.TB, img v1.Image) map[string]fileInfo {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]fileInfo{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[strings.TrimSuffix(h.Name, "/")] = fileInfo{Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Content: string(data), Link: h.Linkname}
	}
}

func TestBuild_SameInputsSameDigest(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile":      "FROM scratch\nCOPY app/ /app/\nCOPY README /\nENV A=1\nCMD [\"/app/run\"]\n",
		"app/run":         "#!/bin/sh\necho hi\n",
		"app/lib/one.txt": "one",
		"app/lib/two.txt": "two",
		"README":          "readme",
	})
	first := build(t, dir, BuildOptions{})
	second := build(t, dir, BuildOptions{})
	if first.Digest != second.Digest {
		t.Fatalf("two builds of the same inputs: %s and %s", first.Digest, second.Digest)
	}

	// Touch every file: modification times are not part of the image.
	later := time.Now().Add(72 * time.Hour)
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chtimes(p, later, later) })
	if again := build(t, dir, BuildOptions{}); again.Digest != first.Digest {
		t.Fatalf("touching the context changed the digest: %s → %s", first.Digest, again.Digest)
	}

	// A different epoch or content changes it.
	if other := build(t, dir, BuildOptions{Epoch: time.Unix(1700000000, 0)}); other.Digest == first.Digest {
		t.Fatal("a different SOURCE_DATE_EPOCH gave the same digest")
	}
	writeTree(t, dir, map[string]string{"app/lib/two.txt": "TWO"})
	if changed := build(t, dir, BuildOptions{}); changed.Digest == first.Digest {
		t.Fatal("changed content gave the same digest")
	}

	// The layer is sorted, with fixed times.
	layers, _ := first.Image.Layers()
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v uname %q gname %q, want epoch and no names", h.Name, h.ModTime, h.Uname, h.Gname)
		}
	}
	want := []string{"app/", "app/lib/", "app/lib/one.txt", "app/lib/two.txt", "app/run"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

func TestBuild_MultiStageAndConfig(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile": `# syntax=docker/dockerfile:1
ARG VERSION=1.0
ARG BASE=scratch
FROM ${BASE} AS build
ARG VERSION
COPY src/ /src/
COPY --chmod=0755 bin/tool /out/app

FROM scratch
ARG VERSION
ARG WHO=world
ENV APP_HOME=/srv/app \
    GREETING="hello ${WHO}"
WORKDIR $APP_HOME
COPY --from=build --chown=1000:1001 /out/app bin/app
COPY --from=0 /src/config.yaml ./conf/
LABEL org.opencontainers.image.version=$VERSION \
      description="an app"
EXPOSE 8080 53/udp
USER 1000:1001
ENTRYPOINT ["/srv/app/bin/app"]
CMD --serve
`,
		"src/config.yaml": "port: 8080\n",
		"bin/tool":        "binary",
	})
	res := build(t, dir, BuildOptions{BuildArgs: map[string]string{"VERSION": "2.3"}})
	files := imageFiles(t, res.Image)
	if got, want := files["srv/app/bin/app"], (fileInfo{Type: tar.TypeReg, Mode: 0o755, UID: 1000, GID: 1001, Content: "binary"}); got != want {
		t.Errorf("srv/app/bin/app = %+v, want %+v", got, want)
	}
	if got := files["srv/app/conf/config.yaml"]; got.Content != "port: 8080\n" || got.UID != 0 {
		t.Errorf("srv/app/conf/config.yaml = %+v", got)
	}
	if _, ok := files["src/config.yaml"]; ok {
		t.Error("the build stage's files leaked into the final image")
	}
	cf, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		Env:          []string{"APP_HOME=/srv/app", "GREETING=hello world"},
		WorkingDir:   "/srv/app",
		Labels:       map[string]string{"org.opencontainers.image.version": "2.3", "description": "an app"},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}},
		User:         "1000:1001",
		Entrypoint:   []string{"/srv/app/bin/app"},
		Cmd:          []string{"/bin/sh", "-c", "--serve"},
	}
	if diff := cmp.Diff(want, cf.Config); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("platform %s/%s created %v", cf.OS, cf.Architecture, cf.Created)
	}
	if n := len(cf.RootFS.DiffIDs); n != 2 {
		t.Errorf("%d layers, want 2 (one per COPY of the final stage)", n)
	}

	// --target builds an earlier stage.
	b := build(t, dir, BuildOptions{Target: "build"})
	if _, ok := imageFiles(t, b.Image)["src/config.yaml"]; !ok {
		t.Error("--target build did not give the build stage")
	}
}

func TestBuild_OwnershipFromNames(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY etc/ /etc/\nCOPY --chown=app:staff f /f\nCOPY --chown=app g /g\n",
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1234:1300::/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\nstaff:x:50:\n",
		"f":          "f",
		"g":          "g",
	})
	files := imageFiles(t, build(t, dir, BuildOptions{}).Image)
	if f := files["f"]; f.UID != 1234 || f.GID != 50 {
		t.Errorf("--chown=app:staff gave %d:%d, want 1234:50", f.UID, f.GID)
	}
	if g := files["g"]; g.UID != 1234 || g.GID != 1300 {
		t.Errorf("--chown=app gave %d:%d, want 1234:1300 (the user's primary group)", g.UID, g.GID)
	}
}

func tarGz(t testing.TB, entries map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o640, Size: int64(len(content)), Uid: 7, Gid: 8}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestBuild_AddAndDockerignore(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile":          "FROM scratch\nADD vendor.tar.gz /opt/vendor/\nADD notes.txt /opt/\nCOPY . /ctx/\n",
		"notes.txt":           "notes",
		".dockerignore":       "# build outputs\n*.log\nsecret/\n!secret/public.pem\n**/tmp\n",
		"debug.log":           "log",
		"secret/key.pem":      "PRIVATE",
		"secret/public.pem":   "PUBLIC",
		"deep/a/tmp/x":        "x",
		"deep/a/keep":         "keep",
		"src/main.go":         "package main",
		"src/link-to-main.go": "->main.go",
	})
	os.WriteFile(filepath.Join(dir, "vendor.tar.gz"), tarGz(t, map[string]string{"lib/a.so": "A", "README": "vendored"}), 0o644)
	files := imageFiles(t, build(t, dir, BuildOptions{}).Image)
	if f := files["opt/vendor/lib/a.so"]; f.Content != "A" || f.UID != 7 || f.GID != 8 || f.Mode != 0o640 {
		t.Errorf("archive member = %+v, want its content, owner and mode", f)
	}
	if f := files["opt/notes.txt"]; f.Content != "notes" {
		t.Errorf("ADD of a plain file = %+v", f)
	}
	for _, gone := range []string{"ctx/debug.log", "ctx/secret/key.pem", "ctx/deep/a/tmp/x"} {
		if _, ok := files[gone]; ok {
			t.Errorf("%s is in the image although .dockerignore excludes it", gone)
		}
	}
	for _, kept := range []string{"ctx/secret/public.pem", "ctx/deep/a/keep", "ctx/src/main.go"} {
		if _, ok := files[kept]; !ok {
			t.Errorf("%s is missing", kept)
		}
	}
	if l := files["ctx/src/link-to-main.go"]; l.Type != tar.TypeSymlink || l.Link != "main.go" {
		t.Errorf("symlink inside the context = %+v, want a link to main.go", l)
	}
}

func TestBuild_BaseImages(t *testing.T) {
	// A base image built here, stored as an OCI layout and as a tarball.
	bdir := t.TempDir()
	writeTree(t, bdir, map[string]string{
		"Dockerfile": "FROM scratch\nCOPY bin/ /usr/bin/\nENV PATH=/usr/bin LANG=C.UTF-8\nCMD [\"sh\"]\n",
		"bin/sh":     "shell",
	})
	base := build(t, bdir, BuildOptions{})
	layoutDir := filepath.Join(t.TempDir(), "base")
	if err := WriteLayout(layoutDir, "1.0", base.Image, nil); err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "base.tar")
	if err := tarball.WriteToFile(tarPath, mustTag(t, "example.com/base:1.0"), base.Image); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"Dockerfile": "FROM base\nCOPY app /usr/bin/app\nCOPY tool /usr/bin\nCOPY --from=base /usr/bin/sh /copied/\nENV PATH=/app:$PATH\nENTRYPOINT [\"app\"]\n",
		"app":        "app",
		"tool":       "tool",
	})
	for _, loc := range []string{"oci-layout:" + layoutDir, "oci-layout:" + layoutDir + ":1.0", "oci-layout:" + layoutDir + "@" + base.Digest.String(), "tarball:" + tarPath} {
		t.Run(strings.SplitN(loc, ":", 2)[0], func(t *testing.T) {
			res := build(t, dir, BuildOptions{Bases: &Resolver{Local: map[string]string{"base": loc}}})
			files := imageFiles(t, res.Image)
			if files["usr/bin/sh"].Content != "shell" || files["usr/bin/app"].Content != "app" || files["usr/bin/tool"].Content != "tool" || files["copied/sh"].Content != "shell" {
				t.Errorf("files of base and build: %v", files)
			}
			cf, _ := res.Image.ConfigFile()
			if diff := cmp.Diff([]string{"LANG=C.UTF-8", "PATH=/app:/usr/bin"}, cf.Config.Env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if cf.Config.Cmd != nil {
				t.Errorf("ENTRYPOINT kept the base's CMD %v", cf.Config.Cmd)
			}
			wantDigest := base.Digest
			if strings.HasPrefix(loc, "tarball:") {
				// docker save keeps the layers and config, not the manifest.
				img, err := tarball.ImageFromPath(tarPath, nil)
				if err != nil {
					t.Fatal(err)
				}
				wantDigest, _ = img.Digest()
			}
			want := []Material{{URI: loc, Digest: wantDigest}}
			if diff := cmp.Diff(want, res.Materials); diff != "" {
				t.Errorf("materials (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuild_Refused(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret": "outside"})
	tests := []struct {
		name   string
		files  map[string]string
		limits Limits
		want   string
		kind   apperr.Kind
	}{
		{"RUN suggests a pipeline step",
			map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\nRUN make\n", "a": "a"}, Limits{},
			"Dockerfile:3: RUN is not supported: Rampart builds images without running containers; run the command as a `run` step of the pipeline", apperr.Invalid},
		{"parent directory source",
			map[string]string{"Dockerfile": "FROM scratch\nCOPY ../secret /s\n"}, Limits{},
			"Dockerfile:2: COPY ../secret: points outside the build context", apperr.Invalid},
		{"absolute source",
			map[string]string{"Dockerfile": "FROM scratch\nCOPY /etc/passwd /p\n"}, Limits{},
			"Dockerfile:2: COPY /etc/passwd: absolute source paths are not allowed", apperr.Invalid},
		{"symlink out of the context as source",
			map[string]string{"Dockerfile": "FROM scratch\nCOPY link /s\n", "link": "->" + filepath.Join(outside, "secret")}, Limits{},
			"Dockerfile:2: COPY link: the build context: symbolic link link points outside it", apperr.Invalid},
		{"relative symlink out of the context inside a directory",
			map[string]string{"Dockerfile": "FROM scratch\nCOPY dir/ /d/\n", "dir/ok": "ok", "dir/up": "->../../x"}, Limits{},
			"Dockerfile:2: COPY: the build context: symbolic link dir/up points outside it", apperr.Invalid},
		{"missing source",
			map[string]string{"Dockerfile": "FROM scratch\nCOPY nope /n\n"}, Limits{},
			"Dockerfile:2: COPY nope: not found in the build context (or excluded by .dockerignore)", apperr.Invalid},
		{"ADD of a URL",
			map[string]string{"Dockerfile": "FROM scratch\nADD https://example.com/x.tgz /x\n"}, Limits{},
			"Dockerfile:2: ADD https://example.com/x.tgz: remote URLs are not supported", apperr.Invalid},
		{"context too large",
			map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\n", "a": strings.Repeat("x", 2000)}, Limits{ContextBytes: 1000},
			"build context is larger than 1000 bytes (limit)", apperr.TooLarge},
		{"too many files",
			map[string]string{"Dockerfile": "FROM scratch\nCOPY . /\n", "a": "a", "b": "b", "c": "c"}, Limits{Files: 2},
			"build context has more than 2 files (limit)", apperr.TooLarge},
		{"too many layers",
			map[string]string{"Dockerfile": "FROM scratch\nCOPY a /a\nCOPY a /b\nCOPY a /c\n", "a": "a"}, Limits{Layers: 2},
			"Dockerfile:4: more than 2 layers (limit)", apperr.Invalid},
		{"several sources to a file",
			map[string]string{"Dockerfile": "FROM scratch\nCOPY a b /dest\n", "a": "a", "b": "b"}, Limits{},
			"Dockerfile:2: COPY with several sources needs a destination directory ending with /", apperr.Invalid},
		{"unknown user name",
			map[string]string{"Dockerfile": "FROM scratch\nCOPY --chown=nobody a /a\n", "a": "a"}, Limits{},
			`Dockerfile:2: COPY --chown=nobody: user "nobody" is not in the image's /etc/passwd`, apperr.Invalid},
		{"missing base layout",
			map[string]string{"Dockerfile": "FROM oci-layout:/nonexistent/layout\n"}, Limits{},
			"Dockerfile:1: FROM oci-layout:/nonexistent/layout: OCI layout /nonexistent/layout not found", apperr.NotFound},
		{"copy from a later stage",
			map[string]string{"Dockerfile": "FROM scratch\nCOPY --from=1 /a /a\nFROM scratch\n"}, Limits{},
			"Dockerfile:2: COPY --from=1: no earlier stage has that index", apperr.Invalid},
		{"unset required variable",
			map[string]string{"Dockerfile": "FROM scratch\nWORKDIR ${DIR:?set DIR}\n"}, Limits{},
			"Dockerfile:2: WORKDIR: DIR: set DIR", apperr.Invalid},
		{"archive member escaping",
			map[string]string{"Dockerfile": "FROM scratch\nADD evil.tar.gz /opt/\n"}, Limits{},
			`Dockerfile:2: ADD evil.tar.gz: archive evil.tar.gz: member "../../etc/cron.d/x" points outside the destination`, apperr.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tt.files)
			if strings.Contains(tt.files["Dockerfile"], "evil.tar.gz") {
				os.WriteFile(filepath.Join(dir, "evil.tar.gz"), tarGz(t, map[string]string{"../../etc/cron.d/x": "pwn"}), 0o644)
			}
			_, err := Build(t.Context(), BuildOptions{ContextDir: dir, Limits: tt.limits, Platform: "linux/amd64"})
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if !strings.Contains(apperr.Message(err), tt.want) {
				t.Errorf("error %q\nwant it to contain %q", apperr.Message(err), tt.want)
			}
			if k := apperr.KindOf(err); k != tt.kind {
				t.Errorf("kind %v, want %v", k, tt.kind)
			}
		})
	}
}

func mustTag(t testing.TB, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func TestBuild_DirectoryOnBase(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"index.html": "<h1>hi</h1>", "css/site.css": "body{}", ".dockerignore": "*.tmp\n", "x.tmp": "tmp"})
	df, err := DirectoryDockerfile("scratch", "/var/www", []string{"/bin/httpd"})
	if err != nil {
		t.Fatal(err)
	}
	res := build(t, dir, BuildOptions{DockerfileText: df})
	files := imageFiles(t, res.Image)
	if files["var/www/index.html"].Content != "<h1>hi</h1>" || files["var/www/css/site.css"].Content != "body{}" {
		t.Errorf("files: %v", files)
	}
	if _, ok := files["var/www/x.tmp"]; ok {
		t.Error(".dockerignore not honoured")
	}
	cf, _ := res.Image.ConfigFile()
	if cf.Config.WorkingDir != "/var/www" || cf.Config.Entrypoint[0] != "/bin/httpd" {
		t.Errorf("config %+v", cf.Config)
	}
	if _, err := DirectoryDockerfile("scratch", "relative", nil); err == nil {
		t.Error("a relative destination was accepted")
	}
}

func FuzzTreeFromTar(f *testing.F) {
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	tw.WriteHeader(&tar.Header{Name: "a/b", Mode: 0o644, Size: 1})
	tw.Write([]byte("x"))
	tw.WriteHeader(&tar.Header{Name: "a/l", Typeflag: tar.TypeSymlink, Linkname: "../../etc"})
	tw.WriteHeader(&tar.Header{Name: "a/h", Typeflag: tar.TypeLink, Linkname: "a/b"})
	tw.Close()
	f.Add(plain.Bytes())
	f.Add(tarGz(f, map[string]string{"../x": "y"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := &node{data: data, size: int64(len(data))}
		rc, err := openArchive(n)
		if err != nil || rc == nil {
			return
		}
		defer rc.Close()
		tr, err := treeFromTar("archive", false, rc, Limits{ContextBytes: 1 << 20, Files: 1000})
		if err != nil {
			if apperr.KindOf(err) == apperr.Internal {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		for _, p := range tr.below(".") {
			if strings.HasPrefix(p, "../") || strings.HasPrefix(p, "/") || p == ".." {
				t.Fatalf("member %q escapes", p)
			}
			tr.resolve(p, true)
		}
	})
}

func TestBuild_PlatformFromIndex(t *testing.T) {
	// A multi-platform base: one image per architecture in an index.
	idx := v1.ImageIndex(empty.Index)
	digests := map[string]v1.Hash{}
	for _, arch := range []string{"amd64", "arm64"} {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY arch /arch\n", "arch": arch})
		res := build(t, dir, BuildOptions{Platform: "linux/" + arch})
		digests[arch] = res.Digest
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: res.Image, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	lay := filepath.Join(t.TempDir(), "multi")
	p, err := layout.Write(lay, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1"})); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM base\nLABEL arch=$TARGETARCH\n"})
	for _, arch := range []string{"arm64", "amd64"} {
		res := build(t, dir, BuildOptions{Platform: "linux/" + arch, Bases: &Resolver{Local: map[string]string{"base": "oci-layout:" + lay + ":1"}}})
		if got := imageFiles(t, res.Image)["arch"].Content; got != arch {
			t.Errorf("platform linux/%s got the %s base", arch, got)
		}
		if res.Materials[0].Digest != digests[arch] {
			t.Errorf("linux/%s: material %s, want %s", arch, res.Materials[0].Digest, digests[arch])
		}
	}
	if _, err := Build(t.Context(), BuildOptions{ContextDir: dir, Platform: "linux/s390x", Bases: &Resolver{Local: map[string]string{"base": "oci-layout:" + lay}}}); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("a platform the base lacks: %v, want not found", err)
	}
}
