package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults applied by Run when a Spec leaves a limit at zero.
const (
	DefaultMemory  = 512 << 20 // bytes
	DefaultPids    = 256
	DefaultCPUs    = 1.0
	DefaultTmpSize = 256 << 20 // bytes, for /tmp (and /var/tmp, /dev/shm: a quarter each)
	// NobodyUID is the default user and group of a container's process.
	NobodyUID = 65534
)

// hostDirs are the host directories bound read-only into a container that
// has no image.
var hostDirs = []string{"usr", "etc", "opt", "var", "srv", "home"}

// Mount binds a host path into the container.
type Mount struct {
	Source      string // host path
	Destination string // absolute path in the container
	ReadOnly    bool
}

// Limits are the cgroup limits of a container. Zero means the default.
type Limits struct {
	CPUs    float64 // cores; fractions allowed
	Memory  int64   // bytes
	Pids    int64   // processes and threads
	TmpSize int64   // bytes of the private /tmp
}

// Spec describes one container run.
type Spec struct {
	// ID names the container: letters, digits, '-', '_' and '.', at most
	// 128 characters, unique among running containers of the Runtime.
	ID string
	// RootFS is the root directory (an unpacked image); empty means the
	// host's filesystem, read-only.
	RootFS string
	// ReadOnlyRoot mounts RootFS read-only (always true without RootFS).
	ReadOnlyRoot bool
	Args         []string
	Env          []string // KEY=VALUE; PATH gets a default when absent
	Dir          string   // working directory in the container ("/" when empty)
	// UID and GID of the process; nil means NobodyUID. Root (0) is
	// allowed only when set explicitly.
	UID, GID *uint32
	// Network shares the host's network namespace; false gives the
	// container an empty network namespace of its own.
	Network  bool
	Hostname string
	Mounts   []Mount
	// Masked lists container paths hidden from the process (files read
	// as empty, directories as an empty tmpfs).
	Masked []string
	Limits Limits
	Stdin  io.Reader
	// Stdout and Stderr receive the container's output; when they are the
	// same writer, writes to it are serialised (but the two streams'
	// relative order is runc's: see Run).
	Stdout io.Writer
	Stderr io.Writer
}

// Result is how a container ended.
type Result struct {
	ExitCode int
	// Killed is set when Run killed the container because its context
	// ended (timeout or cancel).
	Killed bool
	// OOM is set when the kernel's OOM killer killed a process of the
	// container (or the exit looks like it: SIGKILL without Run killing
	// it).
	OOM bool
	// PidsLimited is set when a fork failed because the container had
	// reached its process limit (a fork bomb, or a job needing more).
	PidsLimited bool
}

// Runtime runs containers with runc.
type Runtime struct {
	runc  string
	state string // runc --root
	dir   string // bundles
}

// Available reports whether runc is installed.
func Available() bool {
	_, err := exec.LookPath("runc")
	return err == nil
}

// New returns a runtime keeping its state and bundles under dir (created
// 0700). It fails when runc is not installed.
func New(dir string) (*Runtime, error) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		return nil, fmt.Errorf("container runtime: runc not found (install the runc package): %w", err)
	}
	r := &Runtime{runc: runc, state: filepath.Join(dir, "state"), dir: filepath.Join(dir, "bundles")}
	for _, d := range []string{r.state, r.dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("container runtime: %w", err)
		}
	}
	return r, nil
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// Run runs spec to completion. It returns an error only when the
// container could not be run at all; a non-zero exit is in Result.
func (r *Runtime) Run(ctx context.Context, spec Spec) (Result, error) {
	if !validID.MatchString(spec.ID) {
		return Result{}, fmt.Errorf("container id %q: letters, digits, '-', '_' and '.' only, at most 128", spec.ID)
	}
	if len(spec.Args) == 0 {
		return Result{}, errors.New("container: no command")
	}
	bundle := filepath.Join(r.dir, spec.ID)
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return Result{}, fmt.Errorf("container %s: bundle: %w", spec.ID, err)
	}
	defer os.RemoveAll(bundle)
	cfg, err := r.config(bundle, spec)
	if err != nil {
		return Result{}, err
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return Result{}, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return Result{}, err
	}

	cmd := exec.Command(r.runc, "--root", r.state, "run", "--bundle", bundle, spec.ID)
	cmd.Stdin = spec.Stdin
	stdout, stderr := spec.Stdout, spec.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	var runcErr strings.Builder
	// runc reports its own failures on stderr (time=… level=error …);
	// keep a bounded copy to explain a failed start.
	errCopy := &capped{b: &runcErr, n: 4096}
	var copied chan struct{}
	if spec.Stdout != nil && spec.Stdout == spec.Stderr {
		// One pipe for both streams. runc (without a terminal) still
		// copies the container's stdout and stderr through two pipes of
		// its own, so their relative order is not guaranteed: a caller
		// that needs it redirects stderr inside the container (2>&1).
		pr, pw, err := os.Pipe()
		if err != nil {
			return Result{}, err
		}
		cmd.Stdout, cmd.Stderr = pw, pw
		copied = make(chan struct{})
		go func() {
			defer close(copied)
			_, _ = io.Copy(io.MultiWriter(stdout, errCopy), pr)
			pr.Close()
		}()
		defer func() { <-copied }()
		defer pw.Close()
	} else {
		// The two streams are copied by two goroutines: serialise writes.
		var mu sync.Mutex
		cmd.Stdout = &lockedWriter{mu: &mu, w: stdout}
		cmd.Stderr = &lockedWriter{mu: &mu, w: io.MultiWriter(stderr, errCopy)}
	}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("container %s: start runc: %w", spec.ID, err)
	}
	if f, ok := cmd.Stdout.(*os.File); ok {
		// Only the container (through runc) holds the write end now, so
		// the copy ends when the container's last process does.
		f.Close()
	}
	defer r.delete(spec.ID)

	// runc removes the cgroup when the container ends, so its event
	// counters are sampled while it runs.
	var pidsMax, oomKills atomic.Int64
	stopWatch, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		// Often at first (short-lived bursts), then every 100 ms.
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for n := 0; ; n++ {
			if n == 50 {
				t.Reset(100 * time.Millisecond)
			}
			if n := cgroupEvent(spec.ID, "pids", "pids.events", "max"); n > pidsMax.Load() {
				pidsMax.Store(n)
			}
			n := max(cgroupEvent(spec.ID, "memory", "memory.events", "oom_kill"), cgroupEvent(spec.ID, "memory", "memory.oom_control", "oom_kill"))
			if n > oomKills.Load() {
				oomKills.Store(n)
			}
			select {
			case <-stopWatch:
				return
			case <-t.C:
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var res Result
	select {
	case err = <-done:
	case <-ctx.Done():
		res.Killed = true
		r.kill(spec.ID)
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			err = <-done
		}
	}
	close(stopWatch)
	<-watched
	if copied != nil {
		// The output copy ends with the container's last process; give
		// it a moment so runc's own error line is complete.
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
		}
	}
	res.PidsLimited = pidsMax.Load() > 0
	if oomKills.Load() > 0 {
		res.OOM = true
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.ExitCode = 128 + int(ws.Signal())
		}
		if res.ExitCode == 137 && !res.Killed {
			res.OOM = true
		}
		if msg := errCopy.String(); res.ExitCode == 1 && strings.Contains(msg, "level=error") {
			return res, fmt.Errorf("container %s: runc: %s", spec.ID, lastLine(msg))
		}
	case errors.Is(err, exec.ErrWaitDelay):
	default:
		return res, fmt.Errorf("container %s: %w", spec.ID, err)
	}
	return res, nil
}

// cgroupEvent reads a counter of the container's cgroup events file
// (cgroup v2 layout, or the v1 controller hierarchy); 0 when unknown.
func cgroupEvent(id, controller, file, key string) int64 {
	for _, p := range []string{
		filepath.Join("/sys/fs/cgroup", controller, "rampart", id, file),
		filepath.Join("/sys/fs/cgroup", "rampart", id, file),
	} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(line, " ")
			if ok && k == key {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				return n
			}
		}
	}
	return 0
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// kill sends SIGKILL to every process of the container.
func (r *Runtime) kill(id string) {
	_ = exec.Command(r.runc, "--root", r.state, "kill", "--all", id, "KILL").Run()
}

// delete removes the container's runc state, killing what is left.
func (r *Runtime) delete(id string) {
	_ = exec.Command(r.runc, "--root", r.state, "delete", "--force", id).Run()
}

// Kill stops a container run by another Run (SIGKILL to all its
// processes); Run then returns with the exit status.
func (r *Runtime) Kill(id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("container id %q invalid", id)
	}
	out, err := exec.Command(r.runc, "--root", r.state, "kill", "--all", id, "KILL").CombinedOutput()
	if err != nil {
		return fmt.Errorf("kill container %s: %s", id, lastLine(string(out)))
	}
	return nil
}

func (r *Runtime) config(bundle string, spec Spec) (ociSpec, error) {
	lim := spec.Limits
	if lim.CPUs <= 0 {
		lim.CPUs = DefaultCPUs
	}
	if lim.Memory <= 0 {
		lim.Memory = DefaultMemory
	}
	if lim.Pids <= 0 {
		lim.Pids = DefaultPids
	}
	if lim.TmpSize <= 0 {
		lim.TmpSize = DefaultTmpSize
	}
	uid, gid := uint32(NobodyUID), uint32(NobodyUID)
	if spec.UID != nil {
		uid = *spec.UID
	}
	if spec.GID != nil {
		gid = *spec.GID
	}
	env := spec.Env
	hasPath := false
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			hasPath = true
		}
	}
	if !hasPath {
		env = append(env[:len(env):len(env)], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	cwd := spec.Dir
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return ociSpec{}, fmt.Errorf("container %s: working directory %q is not absolute", spec.ID, cwd)
	}
	root := ociRoot{Path: spec.RootFS, Readonly: spec.ReadOnlyRoot}
	var mounts []ociMount
	if spec.RootFS == "" {
		// A skeleton root: the host's top-level links, empty mount points
		// for the host directories bound read-only and for the system
		// mounts, and for the caller's mounts.
		skel := filepath.Join(bundle, "rootfs")
		var err error
		if mounts, err = hostSkeleton(skel, spec.Mounts); err != nil {
			return ociSpec{}, fmt.Errorf("container %s: root: %w", spec.ID, err)
		}
		root = ociRoot{Path: skel, Readonly: true}
	}
	quarter := lim.TmpSize / 4
	if quarter < 1<<20 {
		quarter = 1 << 20
	}
	mounts = append(mounts,
		ociMount{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		ociMount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		ociMount{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		ociMount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", fmt.Sprintf("size=%d", quarter)}},
		ociMount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		ociMount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		ociMount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", fmt.Sprintf("size=%d", lim.TmpSize)}},
		ociMount{Destination: "/var/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", fmt.Sprintf("size=%d", quarter)}},
	)
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Destination) || filepath.Clean(m.Destination) == "/" {
			return ociSpec{}, fmt.Errorf("container %s: mount %q -> %q: paths must be absolute and not /", spec.ID, m.Source, m.Destination)
		}
		opts := []string{"rbind", "nosuid", "nodev"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		mounts = append(mounts, ociMount{Destination: filepath.Clean(m.Destination), Type: "bind", Source: m.Source, Options: opts})
	}
	ns := []ociNamespace{{"pid"}, {"ipc"}, {"uts"}, {"mount"}}
	if !spec.Network {
		ns = append(ns, ociNamespace{"network"})
	}
	hostname := spec.Hostname
	if hostname == "" {
		hostname = "job"
	}
	return ociSpec{
		Version: "1.0.2",
		Process: ociProcess{
			User: ociUser{UID: uid, GID: gid}, Args: spec.Args, Env: env, Cwd: cwd,
			NoNewPrivileges: true,
			Capabilities:    ociCaps{Bounding: []string{}, Effective: []string{}, Inheritable: []string{}, Permitted: []string{}, Ambient: []string{}},
			Rlimits:         []ociRlim{{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 4096}},
		},
		Root:     root,
		Hostname: hostname,
		Mounts:   mounts,
		Linux: ociLinux{
			Namespaces: ns,
			Resources: ociResources{
				Devices: []ociDevice{{Allow: false, Access: "rwm"}},
				Memory:  &ociMemory{Limit: lim.Memory},
				CPU:     &ociCPU{Quota: int64(lim.CPUs * 100000), Period: 100000},
				Pids:    &ociPids{Limit: lim.Pids},
			},
			MaskedPaths: append([]string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"}, spec.Masked...),
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
			CgroupsPath:   "/rampart/" + spec.ID,
		},
	}, nil
}

// hostSkeleton builds a root directory for a container without an image
// and returns the read-only bind mounts of the host directories.
func hostSkeleton(skel string, extra []Mount) ([]ociMount, error) {
	if err := os.Mkdir(skel, 0o755); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir("/")
	if err != nil {
		return nil, err
	}
	var mounts []ociMount
	bound := map[string]bool{}
	for _, d := range hostDirs {
		bound[d] = true
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink("/" + name)
			if err != nil {
				return nil, err
			}
			if err := os.Symlink(target, filepath.Join(skel, name)); err != nil {
				return nil, err
			}
		case e.IsDir() && bound[name]:
			if err := os.Mkdir(filepath.Join(skel, name), 0o755); err != nil {
				return nil, err
			}
			mounts = append(mounts, ociMount{Destination: "/" + name, Type: "bind", Source: "/" + name,
				Options: []string{"rbind", "nosuid", "nodev", "ro"}})
		}
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp", "run", "root"} {
		if err := os.MkdirAll(filepath.Join(skel, d), 0o755); err != nil {
			return nil, err
		}
	}
	// runc gives a tmpfs the mode of the directory it covers.
	if err := os.Chmod(filepath.Join(skel, "tmp"), os.ModeSticky|0o777); err != nil {
		return nil, err
	}
	// Mount points of the caller's mounts outside the bound directories.
	for _, m := range extra {
		dst := filepath.Clean(m.Destination)
		top := strings.SplitN(strings.TrimPrefix(dst, "/"), "/", 2)[0]
		if bound[top] {
			continue
		}
		if err := os.MkdirAll(filepath.Join(skel, dst), 0o755); err != nil {
			return nil, err
		}
	}
	return mounts, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// capped keeps the first n bytes written to it; safe for concurrent use.
type capped struct {
	mu sync.Mutex
	b  *strings.Builder
	n  int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.n - c.b.Len(); room > 0 {
		c.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}
