package noderuntime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/container"
)

// imageConfig is what a container needs from an image's configuration.
type imageConfig struct {
	Entrypoint []string `json:"entrypoint"`
	Cmd        []string `json:"cmd"`
	Env        []string `json:"env"`
	WorkingDir string   `json:"working_dir"`
	User       string   `json:"user"`
	rootfs     string
}

// image returns the unpacked root filesystem and configuration of an
// image named by digest, pulling and unpacking it the first time: every
// instance of the digest shares one read-only copy.
func (r *Runtime) image(ctx context.Context, ref string) (imageConfig, error) {
	d, err := name.NewDigest(ref, r.nameOpts()...)
	if err != nil {
		return imageConfig{}, apperr.Wrap(err, apperr.Invalid, "image must be named by digest (repo@sha256:…)")
	}
	hex := strings.TrimPrefix(d.DigestStr(), "sha256:")
	dir := filepath.Join(r.o.Dir, "images", hex)
	lock := r.imageLock(hex)
	lock.Lock()
	defer lock.Unlock()
	var cfg imageConfig
	if b, err := os.ReadFile(filepath.Join(dir, "config.json")); err == nil {
		if err := json.Unmarshal(b, &cfg); err == nil {
			cfg.rootfs = filepath.Join(dir, "rootfs")
			return cfg, nil
		}
	}
	img, err := remote.Image(d, remote.WithContext(ctx), remote.WithAuthFromKeychain(r.o.Keychain))
	if err != nil {
		return imageConfig{}, apperr.Wrap(err, apperr.Unavailable, "pull "+ref+": "+truncate(err.Error(), 300))
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return imageConfig{}, apperr.Wrap(err, apperr.Unavailable, "read the configuration of "+ref)
	}
	tmp, err := os.MkdirTemp(filepath.Join(r.o.Dir, "images"), ".unpack-")
	if err != nil {
		return imageConfig{}, err
	}
	defer os.RemoveAll(tmp)
	if err := container.Unpack(img, filepath.Join(tmp, "rootfs")); err != nil {
		return imageConfig{}, apperr.Wrap(err, apperr.Unavailable, "unpack "+ref+": "+truncate(err.Error(), 300))
	}
	// Mount points runc needs exist before the root is shared read-only.
	for _, p := range []string{"proc", "dev", "sys", "tmp", "var/tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(tmp, "rootfs", p), 0o755); err != nil {
			return imageConfig{}, err
		}
	}
	if err := os.Chmod(filepath.Join(tmp, "rootfs"), 0o755); err != nil {
		return imageConfig{}, err
	}
	cfg = imageConfig{Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd, Env: cf.Config.Env, WorkingDir: cf.Config.WorkingDir, User: cf.Config.User}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(tmp, "config.json"), b, 0o600); err != nil {
		return imageConfig{}, err
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return imageConfig{}, fmt.Errorf("store unpacked image: %w", err)
	}
	cfg.rootfs = filepath.Join(dir, "rootfs")
	return cfg, nil
}

func (r *Runtime) nameOpts() []name.Option {
	if r.o.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (r *Runtime) imageLock(hex string) *sync.Mutex {
	r.imgMu.Lock()
	defer r.imgMu.Unlock()
	l, ok := r.imgLocks[hex]
	if !ok {
		l = &sync.Mutex{}
		r.imgLocks[hex] = l
	}
	return l
}

// Images lists the digests unpacked on this machine.
func (r *Runtime) Images() ([]string, error) {
	es, err := os.ReadDir(filepath.Join(r.o.Dir, "images"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, "sha256:"+e.Name())
		}
	}
	return out, nil
}
