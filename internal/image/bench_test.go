package image

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// smallAppContext is a typical small service: a 6 MiB binary, 200 static
// assets of 4 KiB, a config file; built in two stages onto scratch.
func smallAppContext(b *testing.B) string {
	dir := b.TempDir()
	files := map[string]string{
		"Dockerfile": `ARG VERSION=1.0
FROM scratch AS assets
COPY web/ /web/
FROM scratch
ARG VERSION
COPY --chmod=0755 bin/server /usr/local/bin/server
COPY --from=assets /web/ /srv/web/
COPY config.yaml /etc/app/config.yaml
ENV APP_ENV=production
LABEL org.opencontainers.image.version=$VERSION
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/server"]
`,
		"config.yaml": "listen: :8080\n",
	}
	for i := range 200 {
		files[fmt.Sprintf("web/static/%03d.css", i)] = string(randomBytes(b, 4<<10))
	}
	writeTree(b, dir, files)
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "server"), randomBytes(b, 6<<20), 0o755); err != nil {
		b.Fatal(err)
	}
	return dir
}

func randomBytes(b testing.TB, n int) []byte {
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkBuild_SmallImage builds the image and computes its digest (the
// layers compressed once), as a pipeline's build-image step does before
// pushing.
func BenchmarkBuild_SmallImage(b *testing.B) {
	dir := smallAppContext(b)
	b.ResetTimer()
	for b.Loop() {
		res, err := Build(b.Context(), BuildOptions{ContextDir: dir, Platform: "linux/amd64"})
		if err != nil {
			b.Fatal(err)
		}
		layers, _ := res.Image.Layers()
		for _, l := range layers {
			if _, err := l.Digest(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkBuild_SmallImageWithLayout adds the evidence (scan for the SBOM,
// provenance) and writes the OCI layout.
func BenchmarkBuild_SmallImageWithLayout(b *testing.B) {
	dir := smallAppContext(b)
	sc := testScanner(b)
	b.ResetTimer()
	for b.Loop() {
		res, err := Build(b.Context(), BuildOptions{ContextDir: dir, Platform: "linux/amd64"})
		if err != nil {
			b.Fatal(err)
		}
		ev, err := MakeEvidence(b.Context(), res, EvidenceOptions{Scanner: sc, Name: "bench/app"})
		if err != nil {
			b.Fatal(err)
		}
		if err := WriteLayout(filepath.Join(b.TempDir(), "out"), "1.0", res.Image, ev); err != nil {
			b.Fatal(err)
		}
	}
}
