// Package containerexec is the pipeline executor that runs every job
// command in an OCI container through runc (package container): the job's
// image unpacked as root filesystem, or the runner's own filesystem
// mounted read-only when the job names no image; the workspace, a tmpfs of
// the job's disk size owned by the container's non-root user, bind-mounted
// at /workspace; no network unless the job asks; cgroup limits on CPU,
// memory and processes.
//
// Images are either references to an OCI registry (Rampart's own, or any
// other) or local OCI image layouts written "oci:/path/to/layout" or
// "oci:/path/to/layout#ref-name". They are unpacked once per digest under
// the executor's directory.
package containerexec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rampartsec/rampart/internal/container"
	"github.com/rampartsec/rampart/internal/pipeline"
)

// WorkspaceDir is where the workspace is mounted in a container.
const WorkspaceDir = "/workspace"

// Executor runs commands in runc containers.
type Executor struct {
	rt     *container.Runtime
	images string
	mu     sync.Mutex
	remote []remote.Option
}

var _ pipeline.Executor = (*Executor)(nil)

// New returns a container executor keeping its state under dir. It fails
// when runc is missing.
func New(dir string, opts ...remote.Option) (*Executor, error) {
	rt, err := container.New(filepath.Join(dir, "runc"))
	if err != nil {
		return nil, err
	}
	images := filepath.Join(dir, "images")
	if err := os.MkdirAll(images, 0o700); err != nil {
		return nil, err
	}
	return &Executor{rt: rt, images: images, remote: opts}, nil
}

// Name implements pipeline.Executor.
func (*Executor) Name() string { return pipeline.ExecutorContainer }

// Isolated implements pipeline.Executor.
func (*Executor) Isolated() bool { return true }

// Workspace implements pipeline.Executor: a tmpfs of size bytes owned by
// the container user.
func (*Executor) Workspace(dir string, size int64) (pipeline.Workspace, error) {
	unmount, err := container.MountScratch(dir, size, container.NobodyUID, container.NobodyUID)
	if err != nil {
		return pipeline.Workspace{}, err
	}
	return pipeline.Workspace{UID: container.NobodyUID, GID: container.NobodyUID, Cleanup: unmount}, nil
}

// Exec implements pipeline.Executor.
func (e *Executor) Exec(ctx context.Context, spec pipeline.ExecSpec) (pipeline.ExecResult, error) {
	cs := container.Spec{
		ID: spec.ID,
		// runc copies the container's stdout and stderr through two pipes
		// of its own, which reorders them; one stream keeps the order.
		Args:    []string{"/bin/sh", "-e", "-c", "exec 2>&1\n" + spec.Script},
		Env:     append([]string{"HOME=" + WorkspaceDir, "CI=true"}, spec.Env...),
		Dir:     WorkspaceDir,
		Network: spec.Network,
		Mounts:  []container.Mount{{Source: spec.Workspace, Destination: WorkspaceDir}},
		Masked:  spec.Masked,
		Limits:  container.Limits{CPUs: spec.Limits.CPUs, Memory: spec.Limits.Memory, Pids: spec.Limits.Pids},
		Stdout:  spec.Output,
		Stderr:  spec.Output,
	}
	if spec.Image != "" {
		root, err := e.rootfs(ctx, spec.Image)
		if err != nil {
			return pipeline.ExecResult{}, err
		}
		cs.RootFS, cs.ReadOnlyRoot = root, true
		cs.Masked = nil // the image does not hold the host's paths
	}
	res, err := e.rt.Run(ctx, cs)
	return pipeline.ExecResult{ExitCode: res.ExitCode, Killed: res.Killed, OOM: res.OOM, PidsLimited: res.PidsLimited}, err
}

// rootfs returns the unpacked root filesystem of an image.
func (e *Executor) rootfs(ctx context.Context, ref string) (string, error) {
	var img v1.Image
	var err error
	if path, ok := strings.CutPrefix(ref, "oci:"); ok {
		p, refName, _ := strings.Cut(path, "#")
		if !filepath.IsAbs(p) {
			return "", fmt.Errorf("image %s: an OCI layout path must be absolute", ref)
		}
		img, err = container.ImageFromLayout(p, refName)
	} else {
		var r name.Reference
		r, err = name.ParseReference(ref, name.Insecure)
		if err == nil {
			img, err = remote.Image(r, append([]remote.Option{remote.WithContext(ctx)}, e.remote...)...)
		}
	}
	if err != nil {
		return "", fmt.Errorf("image %s: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("image %s: %w", ref, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	root := filepath.Join(e.images, digest.Hex, "rootfs")
	if _, err := os.Stat(filepath.Join(e.images, digest.Hex, "complete")); err == nil {
		return root, nil
	}
	_ = os.RemoveAll(filepath.Join(e.images, digest.Hex))
	if err := container.Unpack(img, root); err != nil {
		return "", fmt.Errorf("image %s: %w", ref, err)
	}
	// The private /tmp takes the mode of the image's directory: make it
	// writable by the job's non-root user whatever the image says.
	tmp := filepath.Join(root, "tmp")
	if fi, err := os.Lstat(tmp); err == nil && !fi.IsDir() {
		return "", fmt.Errorf("image %s: /tmp is not a directory", ref)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, os.ModeSticky|0o777); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(e.images, digest.Hex, "complete"), nil, 0o600); err != nil {
		return "", err
	}
	return root, nil
}
