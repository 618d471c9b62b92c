package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Runtime injection: pipelines and deployments name the secrets a job or
// workload needs (Injection) — references, never values, so release
// records and images hold none — and ask the vault for them when the job
// or workload starts. The vault checks its policies for that pipeline run
// or deployment, audits every read, and returns a Bundle: environment
// variables and files in memory, a Masker for logs, and writers for
// tmpfs files or a Kubernetes Secret owned by the release.

// Injection asks for one secret, as an environment variable or a file.
type Injection struct {
	// Ref is the secret: ORG/NAME, ORG/PROJECT/NAME or ORG/PROJECT/ENV/NAME.
	Ref string `json:"ref"`
	// Env is the environment variable to set, or File the path (relative
	// to the secrets directory) to write; exactly one.
	Env  string `json:"env,omitempty"`
	File string `json:"file,omitempty"`
}

// Bundle holds resolved secrets. It keeps values in memory only; write
// them where they go and drop it.
type Bundle struct {
	Env   []Injected
	Files []Injected
}

// Injected is one resolved secret.
type Injected struct {
	Name    string // variable name or file path
	Ref     Ref
	Version int
	Value   Value
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// maxInjections bounds the secrets one job or workload may ask for.
const maxInjections = 200

func validateInjections(specs []Injection) error {
	if len(specs) > maxInjections {
		return apperr.InvalidField("secrets", "at most %d secrets per job or workload", maxInjections)
	}
	seen := map[string]bool{}
	for _, sp := range specs {
		switch {
		case (sp.Env == "") == (sp.File == ""):
			return apperr.InvalidField("secrets", "secret %q must go to exactly one of an environment variable or a file", clip(sp.Ref))
		case sp.Env != "" && !envNameRE.MatchString(sp.Env):
			return apperr.InvalidField("secrets", "%q is not an environment variable name", clip(sp.Env))
		case sp.File != "" && !validFilePath(sp.File):
			return apperr.InvalidField("secrets", "%q is not a relative file path without '..'", clip(sp.File))
		}
		key := "env:" + sp.Env
		if sp.File != "" {
			key = "file:" + path.Clean(sp.File)
		}
		if seen[key] {
			return apperr.InvalidField("secrets", "%s is named twice", strings.TrimPrefix(strings.TrimPrefix(key, "env:"), "file:"))
		}
		seen[key] = true
	}
	return nil
}

func validFilePath(p string) bool {
	if p == "" || len(p) > 255 || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	c := path.Clean(p)
	return c != "." && c != ".." && !strings.HasPrefix(c, "../") && c == p
}

// ResolveForJob resolves a pipeline job's secrets: each must be granted to
// the run's pipeline (project, branch, environment) by a policy.
func (s *Service) ResolveForJob(ctx context.Context, run PipelineRun, specs []Injection) (*Bundle, error) {
	return s.resolveBundle(ctx, Reader{Pipeline: &run}, specs)
}

// ResolveForDeployment resolves the secrets of a release's workload at
// start: each must be granted to the deployment (project, environment).
func (s *Service) ResolveForDeployment(ctx context.Context, d DeploymentRun, specs []Injection) (*Bundle, error) {
	return s.resolveBundle(ctx, Reader{Deployment: &d}, specs)
}

func (s *Service) resolveBundle(ctx context.Context, rd Reader, specs []Injection) (*Bundle, error) {
	if err := validateInjections(specs); err != nil {
		return nil, err
	}
	b := &Bundle{}
	now := s.now()
	for _, sp := range specs {
		ref, err := ParseRef(sp.Ref)
		if err != nil {
			return nil, err
		}
		val, sec, v, err := s.Read(ctx, rd, ref, 0)
		if err != nil {
			return nil, err
		}
		if sec.Expired(now) {
			return nil, apperr.E(apperr.Invalid, "secret %s expired on %s: rotate it or change its expiry", ref, sec.ExpiresAt.Format("2006-01-02"))
		}
		in := Injected{Ref: ref, Version: v.Version, Value: val}
		if sp.Env != "" {
			in.Name = sp.Env
			b.Env = append(b.Env, in)
		} else {
			in.Name = sp.File
			b.Files = append(b.Files, in)
		}
	}
	return b, nil
}

// Environ returns the bundle's variables as NAME=VALUE (for exec.Cmd.Env).
func (b *Bundle) Environ() []string {
	out := make([]string, 0, len(b.Env))
	for _, e := range b.Env {
		out = append(out, e.Name+"="+string(e.Value.b))
	}
	return out
}

// Masker returns a masker for every value of the bundle.
func (b *Bundle) Masker() *Masker {
	var vs []Value
	for _, e := range slices.Concat(b.Env, b.Files) {
		vs = append(vs, e.Value)
	}
	return NewMasker(vs...)
}

// tmpfsMagic is Linux's TMPFS_MAGIC (statfs f_type).
const tmpfsMagic = 0x01021994

// WriteFiles writes the bundle's files under dir, which must be on tmpfs
// (secrets never touch a disk): files 0400, directories 0700, none
// replaced. Paths cannot leave dir.
func (b *Bundle) WriteFiles(dir string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return apperr.Wrap(err, apperr.Invalid, "secrets directory "+dir)
	}
	if int64(st.Type) != tmpfsMagic {
		return apperr.E(apperr.Invalid, "secrets directory %s is not on tmpfs: secrets are never written to disk", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range b.Files {
		if d := path.Dir(f.Name); d != "." {
			if err := mkdirAll(root, d); err != nil {
				return err
			}
		}
		fh, err := root.OpenFile(filepath.FromSlash(f.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
		if err != nil {
			return apperr.Wrap(err, apperr.Conflict, "write secret file "+f.Name)
		}
		if _, err := fh.Write(f.Value.b); err != nil {
			fh.Close()
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	return nil
}

func mkdirAll(root *os.Root, d string) error {
	cur := ""
	for part := range strings.SplitSeq(d, "/") {
		cur = path.Join(cur, part)
		if err := root.Mkdir(filepath.FromSlash(cur), 0o700); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return nil
}

// OwnerReference names the Kubernetes object a Secret belongs to (the
// release's workload), so Kubernetes deletes the Secret with it.
type OwnerReference struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	UID        string `json:"uid"`
}

var k8sNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

// KubernetesSecret returns a v1 Secret manifest (JSON) holding the
// bundle: environment variables under their names, files under their base
// names. It is immutable and owned by owner (controller, blocking owner
// deletion). The manifest holds the values: send it to the API server and
// keep it nowhere.
func (b *Bundle) KubernetesSecret(name, namespace string, owner OwnerReference) ([]byte, error) {
	if !k8sNameRE.MatchString(name) || !k8sNameRE.MatchString(namespace) || len(namespace) > 63 {
		return nil, apperr.E(apperr.Invalid, "Kubernetes names must be lower-case DNS names")
	}
	if owner.APIVersion == "" || owner.Kind == "" || owner.Name == "" || owner.UID == "" {
		return nil, apperr.E(apperr.Invalid, "a Secret for a release needs its owner's apiVersion, kind, name and uid")
	}
	data := map[string]string{}
	for _, e := range slices.Concat(b.Env, b.Files) {
		key := path.Base(e.Name)
		if _, dup := data[key]; dup {
			return nil, apperr.E(apperr.Invalid, "two secrets would share the Kubernetes key %q", key)
		}
		data[key] = base64.StdEncoding.EncodeToString(e.Value.b)
	}
	type ownerRef struct {
		OwnerReference
		Controller         bool `json:"controller"`
		BlockOwnerDeletion bool `json:"blockOwnerDeletion"`
	}
	manifest := map[string]any{
		"apiVersion": "v1",
		"kind":       "Secret",
		"metadata": map[string]any{
			"name":            name,
			"namespace":       namespace,
			"labels":          map[string]string{"app.kubernetes.io/managed-by": "rampart"},
			"ownerReferences": []ownerRef{{OwnerReference: owner, Controller: true, BlockOwnerDeletion: true}},
		},
		"type":      "Opaque",
		"immutable": true,
		"data":      data,
	}
	return json.Marshal(manifest)
}

// Masker hides secret values in logs: every occurrence of a value (and,
// for values of several lines, of each line) becomes "***". Values
// shorter than 3 bytes are not masked (they would mask everything).
type Masker struct {
	tokens [][]byte // longest first
	maxLen int
}

// MaskReplacement is what a masked value shows as.
const MaskReplacement = "***"

// NewMasker returns a masker for values.
func NewMasker(values ...Value) *Masker {
	m := &Masker{}
	add := func(b []byte) {
		if len(b) < 3 || slices.ContainsFunc(m.tokens, func(t []byte) bool { return bytes.Equal(t, b) }) {
			return
		}
		m.tokens = append(m.tokens, bytes.Clone(b))
		m.maxLen = max(m.maxLen, len(b))
	}
	for _, v := range values {
		add(v.b)
		if bytes.ContainsAny(v.b, "\r\n") {
			for line := range bytes.SplitSeq(v.b, []byte("\n")) {
				add(bytes.TrimRight(line, "\r"))
			}
		}
	}
	slices.SortFunc(m.tokens, func(a, b []byte) int { return len(b) - len(a) })
	return m
}

// Mask returns s with every value masked.
func (m *Masker) Mask(s []byte) []byte {
	var out bytes.Buffer
	w := m.Writer(&out)
	_, _ = w.Write(s)
	_ = w.Close()
	return out.Bytes()
}

// Writer returns a writer that masks what passes through it to w, also
// when a value is split across writes. Close flushes what it holds back.
func (m *Masker) Writer(w io.Writer) io.WriteCloser { return &maskWriter{m: m, w: w} }

type maskWriter struct {
	m       *Masker
	w       io.Writer
	pending []byte
}

func (mw *maskWriter) Write(p []byte) (int, error) {
	mw.pending = append(mw.pending, p...)
	if err := mw.flush(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (mw *maskWriter) Close() error { return mw.flush(true) }

// flush writes out what can no longer become (part of) a value; at the end
// it writes everything.
func (mw *maskWriter) flush(final bool) error {
	var out []byte
	buf := mw.pending
	i := 0
scan:
	for i < len(buf) {
		rest := buf[i:]
		for _, t := range mw.m.tokens {
			if bytes.HasPrefix(rest, t) {
				out = append(out, MaskReplacement...)
				i += len(t)
				continue scan
			}
		}
		if !final {
			for _, t := range mw.m.tokens {
				if len(rest) < len(t) && bytes.HasPrefix(t, rest) {
					break scan // may become a value with the next write
				}
			}
		}
		out = append(out, buf[i])
		i++
	}
	mw.pending = append(mw.pending[:0], buf[i:]...)
	if len(out) == 0 {
		return nil
	}
	_, err := mw.w.Write(out)
	return err
}
