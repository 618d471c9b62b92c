package noderuntime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/container"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/logging"
)

// Options configure the runtime.
type Options struct {
	// Dir holds images, container bundles, instance records and logs.
	Dir    string
	Logger *slog.Logger
	// Keychain gives registry credentials (default: anonymous).
	Keychain authn.Keychain
	// Insecure allows plain-HTTP registries.
	Insecure bool
	// BackoffBase and BackoffMax bound the wait before restarting an
	// instance that exited: doubled at each restart (defaults 500ms,
	// 30s).
	BackoffBase, BackoffMax time.Duration
	// Poll is how often a supervisor checks its instance (default
	// 200ms).
	Poll time.Duration
	// MaxLogBytes caps an instance's log file; past it the older half
	// is dropped (default 8 MiB).
	MaxLogBytes int64
}

// Runtime runs release instances as runc containers on this machine.
type Runtime struct {
	o     Options
	c     *container.Runtime
	log   *slog.Logger
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	mu    sync.Mutex
	insts map[string]*inst

	imgMu    sync.Mutex
	imgLocks map[string]*sync.Mutex
}

var _ deploy.Runtime = (*Runtime)(nil)

// meta is an instance's record on disk, read back after a restart.
type meta struct {
	ID        string    `json:"id"`
	Group     string    `json:"group"`
	ReleaseID int64     `json:"release_id"`
	Port      int       `json:"port"`
	HostPort  int       `json:"host_port"`
	Image     string    `json:"image"`
	StartedAt time.Time `json:"started_at"`
	// Stopping is written before the container is deleted: a record
	// that still says so after a crash is finished off, never restarted.
	Stopping bool `json:"stopping,omitempty"`
}

type inst struct {
	meta
	ln       net.Listener
	mu       sync.Mutex
	pid      int
	state    string
	restarts int
	lastExit string
	cancel   context.CancelFunc
	done     chan struct{}
}

// Available reports whether this machine can run the node runtime:
// runc installed and root.
func Available() bool { return container.Available() && os.Geteuid() == 0 }

// Open starts the runtime: it reattaches to the instances that still
// run from before (republishing their ports, supervising them again),
// restarts those that died, and removes containers nobody recorded.
func Open(o Options) (*Runtime, error) {
	if o.Dir == "" || o.Logger == nil {
		return nil, errors.New("noderuntime: Dir and Logger are required")
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 500 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.MaxLogBytes <= 0 {
		o.MaxLogBytes = 8 << 20
	}
	if o.Keychain == nil {
		o.Keychain = anonymous{}
	}
	for _, d := range []string{"images", "instances"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("node runtime: %w", err)
		}
	}
	c, err := container.New(filepath.Join(o.Dir, "runc"))
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Unavailable, "the node runtime needs runc")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{o: o, c: c, log: o.Logger.With(logging.KeyComponent, "noderuntime"), ctx: ctx, stop: cancel,
		insts: map[string]*inst{}, imgLocks: map[string]*sync.Mutex{}}
	if err := r.reattach(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close stops supervising and publishing ports; the containers keep
// running, and the next Open reattaches to them.
func (r *Runtime) Close() error {
	r.stop()
	r.mu.Lock()
	for _, in := range r.insts {
		in.ln.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

func (r *Runtime) metaPath(id string) string { return filepath.Join(r.o.Dir, "instances", id+".json") }
func (r *Runtime) logPath(id string) string  { return filepath.Join(r.o.Dir, "instances", id+".log") }

func (r *Runtime) reattach() error {
	files, err := filepath.Glob(filepath.Join(r.o.Dir, "instances", "*.json"))
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var m meta
		if err := json.Unmarshal(b, &m); err != nil || !idRE.MatchString(m.ID) {
			r.log.Warn("unreadable instance record removed", "file", f)
			_ = os.Remove(f)
			continue
		}
		st, err := r.c.State(m.ID)
		if err != nil {
			return err
		}
		if m.Stopping || (st.Status != "running" && !r.hasBundle(m.ID)) {
			// Rampart died while stopping it (or its bundle is gone, so
			// it cannot be started again): finish the stop.
			r.log.Info("finishing the stop of an instance", "instance", m.ID)
			if err := r.c.Delete(m.ID, 2*time.Second); err != nil {
				return err
			}
			_ = os.Remove(r.metaPath(m.ID))
			_ = os.Remove(r.logPath(m.ID))
			continue
		}
		known[m.ID] = true
		in := &inst{meta: m, pid: st.Pid, state: st.Status}
		if st.Status != "running" {
			in.state, in.pid = "restarting", 0
		}
		if err := r.publish(in); err != nil {
			return err
		}
		r.log.Info("reattached to instance", "instance", m.ID, "state", in.state)
		r.supervise(in)
	}
	states, err := r.c.List()
	if err != nil {
		return err
	}
	for _, s := range states {
		if !known[s.ID] {
			r.log.Warn("removing a container no instance record names", "container", s.ID)
			if err := r.c.Delete(s.ID, 2*time.Second); err != nil {
				r.log.Warn("remove orphan container", logging.KeyErr, err)
			}
		}
	}
	// A crash between writing a bundle (which holds the instance's
	// secrets) and recording the instance leaves a bundle and a log
	// nobody names: remove them.
	bundles, _ := os.ReadDir(r.bundleDir())
	for _, b := range bundles {
		if !known[b.Name()] && idRE.MatchString(b.Name()) {
			r.log.Warn("removing a container bundle no instance record names", "container", b.Name())
			if err := r.c.Delete(b.Name(), time.Second); err != nil {
				r.log.Warn("remove orphan bundle", logging.KeyErr, err)
			}
		}
	}
	logs, _ := filepath.Glob(filepath.Join(r.o.Dir, "instances", "*.log"))
	for _, l := range logs {
		if !known[strings.TrimSuffix(filepath.Base(l), ".log")] {
			_ = os.Remove(l)
		}
	}
	return nil
}

// bundleDir is where package container keeps the containers' bundles
// (container.New(Dir/runc)).
func (r *Runtime) bundleDir() string { return filepath.Join(r.o.Dir, "runc", "bundles") }

func (r *Runtime) hasBundle(id string) bool {
	_, err := os.Stat(filepath.Join(r.bundleDir(), id, "config.json"))
	return err == nil
}

// publish listens on the instance's host port on the loopback
// interface (the same port as before when it is free) and proxies
// connections into the container's network namespace.
func (r *Runtime) publish(in *inst) error {
	ln, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(in.HostPort))
	if err != nil && in.HostPort != 0 {
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
	}
	if err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "publish the instance's port")
	}
	in.ln = ln
	in.HostPort = ln.Addr().(*net.TCPAddr).Port
	if err := r.save(in.meta); err != nil {
		ln.Close()
		return err
	}
	r.mu.Lock()
	r.insts[in.ID] = in
	r.mu.Unlock()
	r.wg.Go(func() { r.proxy(in) })
	return nil
}

func (r *Runtime) save(m meta) error {
	b, _ := json.Marshal(m)
	tmp := r.metaPath(m.ID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.metaPath(m.ID))
}

func (r *Runtime) proxy(in *inst) {
	for {
		c, err := in.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Go(func() {
			defer c.Close()
			in.mu.Lock()
			pid := in.pid
			in.mu.Unlock()
			if pid == 0 {
				return
			}
			ctx, cancel := context.WithTimeout(r.ctx, 3*time.Second)
			up, err := dialIn(ctx, pid, in.Port)
			cancel()
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); closeWrite(up); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
			select {
			case <-done:
				<-done
			case <-r.ctx.Done():
			}
		})
	}
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// supervise watches an instance and restarts it with backoff when it
// exits.
func (r *Runtime) supervise(in *inst) {
	ctx, cancel := context.WithCancel(r.ctx)
	in.cancel, in.done = cancel, make(chan struct{})
	r.wg.Go(func() {
		defer close(in.done)
		t := time.NewTicker(r.o.Poll)
		defer t.Stop()
		for {
			in.mu.Lock()
			pid, state := in.pid, in.state
			in.mu.Unlock()
			if state == "restarting" || !container.Alive(pid) {
				if !r.restart(ctx, in) {
					return
				}
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// restart starts a dead instance again after its backoff; false means
// the supervisor should stop.
func (r *Runtime) restart(ctx context.Context, in *inst) bool {
	in.mu.Lock()
	if in.state == "running" {
		in.restarts++
		in.lastExit = r.lastLine(in.ID)
	}
	in.state, in.pid = "restarting", 0
	n := in.restarts
	in.mu.Unlock()
	wait := r.o.BackoffBase << min(max(n-1, 0), 16)
	if wait > r.o.BackoffMax || wait <= 0 {
		wait = r.o.BackoffMax
	}
	r.trimLog(in.ID)
	select {
	case <-ctx.Done():
		return false
	case <-time.After(wait):
	}
	if err := r.c.Restart(in.ID, r.logPath(in.ID)); err != nil {
		r.log.Warn("restart instance", "instance", in.ID, logging.KeyErr, err)
		in.mu.Lock()
		in.restarts++
		in.lastExit = "restart failed: " + truncate(err.Error(), 200)
		in.mu.Unlock()
		return ctx.Err() == nil
	}
	return r.attach(in) == nil || ctx.Err() == nil
}

// attach reads a started container's pid and brings its loopback up.
func (r *Runtime) attach(in *inst) error {
	st, err := r.c.State(in.ID)
	if err != nil {
		return err
	}
	if st.Status != "running" {
		in.mu.Lock()
		in.state = "running" // counted as a restart by the supervisor
		in.mu.Unlock()
		return nil
	}
	if err := loopbackUp(st.Pid); err != nil {
		r.log.Warn("loopback of instance", "instance", in.ID, logging.KeyErr, err)
	}
	in.mu.Lock()
	in.pid, in.state = st.Pid, "running"
	in.mu.Unlock()
	return nil
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,100}$`)

func newID(group string, rel int64) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return group + "-r" + strconv.FormatInt(rel, 10) + "-" + hex.EncodeToString(b[:])
}

// Start pulls the workload's image (unpacked once per digest), starts
// a container from it and publishes its port on the loopback interface.
func (r *Runtime) Start(ctx context.Context, w deploy.Workload) (deploy.Instance, error) {
	if !idRE.MatchString(w.Group) || w.Port < 1 || w.Port > 65535 {
		return deploy.Instance{}, apperr.E(apperr.Invalid, "bad workload group or port")
	}
	im, err := r.image(ctx, w.Image)
	if err != nil {
		return deploy.Instance{}, err
	}
	args := w.Command
	if len(args) == 0 {
		args = append(slices.Clone(im.Entrypoint), im.Cmd...)
	}
	if len(args) == 0 {
		return deploy.Instance{}, apperr.E(apperr.Invalid, "image %s has no entrypoint or command, and the release gives none", w.Image)
	}
	env := slices.Clone(im.Env)
	keys := make([]string, 0, len(w.Env))
	for k := range w.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+w.Env[k])
	}
	for k, v := range w.Secrets {
		env = append(env, k+"="+string(v))
	}
	env = append(env, "PORT="+strconv.Itoa(w.Port))
	uid := uint32(container.NobodyUID)
	if u, err := strconv.ParseUint(strings.SplitN(im.User, ":", 2)[0], 10, 32); err == nil && u != 0 {
		uid = uint32(u)
	}
	gid := uid
	id := newID(w.Group, w.ReleaseID)
	spec := container.Spec{ID: id, RootFS: im.rootfs, ReadOnlyRoot: true, Args: args, Env: env, Dir: im.WorkingDir,
		UID: &uid, GID: &gid, Hostname: w.Group,
		Limits: container.Limits{CPUs: float64(w.CPUMillis) / 1000, Memory: w.MemoryBytes, Pids: w.Pids, TmpSize: 64 << 20}}
	in := &inst{meta: meta{ID: id, Group: w.Group, ReleaseID: w.ReleaseID, Port: w.Port, Image: w.Image, StartedAt: time.Now().UTC()}}
	if err := r.c.Start(spec, r.logPath(id)); err != nil {
		return deploy.Instance{}, apperr.Wrap(err, apperr.Unavailable, "start instance of "+w.Image+": "+truncate(err.Error(), 300))
	}
	if err := r.attach(in); err != nil {
		_ = r.c.Delete(id, time.Second)
		return deploy.Instance{}, err
	}
	if err := r.publish(in); err != nil {
		_ = r.c.Delete(id, time.Second)
		return deploy.Instance{}, err
	}
	r.supervise(in)
	r.log.Info("instance started", "instance", id, "image", w.Image, "addr", in.ln.Addr().String())
	return r.view(in), nil
}

func (r *Runtime) view(in *inst) deploy.Instance {
	in.mu.Lock()
	defer in.mu.Unlock()
	return deploy.Instance{ID: in.ID, Group: in.Group, ReleaseID: in.ReleaseID, Addr: in.ln.Addr().String(), State: in.state,
		Restarts: in.restarts, StartedAt: in.StartedAt, LastExit: in.lastExit}
}

func (r *Runtime) get(id string) (*inst, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in, ok := r.insts[id]
	if !ok {
		return nil, apperr.E(apperr.NotFound, "instance %s not found", truncate(id, 100))
	}
	return in, nil
}

// Instance returns an instance's state.
func (r *Runtime) Instance(ctx context.Context, id string) (deploy.Instance, error) {
	in, err := r.get(id)
	if err != nil {
		return deploy.Instance{}, err
	}
	return r.view(in), nil
}

// Instances lists a group's instances, oldest first.
func (r *Runtime) Instances(ctx context.Context, group string) ([]deploy.Instance, error) {
	r.mu.Lock()
	var ins []*inst
	for _, in := range r.insts {
		if in.Group == group {
			ins = append(ins, in)
		}
	}
	r.mu.Unlock()
	out := make([]deploy.Instance, 0, len(ins))
	for _, in := range ins {
		out = append(out, r.view(in))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.Before(out[j].StartedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

var healthClient = &http.Client{Timeout: 2 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport: &http.Transport{DisableKeepAlives: true}}

// Check makes one HTTP health check: GET path on the published port; a
// 2xx or 3xx answer is healthy.
func (r *Runtime) Check(ctx context.Context, id, path string) error {
	in, err := r.get(id)
	if err != nil {
		return err
	}
	in.mu.Lock()
	state := in.state
	in.mu.Unlock()
	if state != "running" {
		return apperr.E(apperr.Unavailable, "instance %s is %s", id, state)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+in.ln.Addr().String()+path, nil)
	if err != nil {
		return apperr.Wrap(err, apperr.Invalid, "bad health path")
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "health check of "+id+": no answer")
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return apperr.E(apperr.Unavailable, "health check of %s answered %d", id, resp.StatusCode)
	}
	return nil
}

// Stop stops an instance (SIGTERM, SIGKILL after 5s) and removes its
// container, record and log.
func (r *Runtime) Stop(ctx context.Context, id string) error {
	in, err := r.get(id)
	if err != nil {
		return err
	}
	in.cancel()
	<-in.done
	in.ln.Close()
	in.mu.Lock()
	in.Stopping = true
	m := in.meta
	in.mu.Unlock()
	if err := r.save(m); err != nil {
		return err
	}
	if err := r.c.Delete(id, 5*time.Second); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.insts, id)
	r.mu.Unlock()
	_ = os.Remove(r.metaPath(id))
	_ = os.Remove(r.logPath(id))
	r.log.Info("instance stopped", "instance", id)
	return nil
}

// StopAll stops every instance (tests and `rampart` uninstall use it).
func (r *Runtime) StopAll(ctx context.Context) error {
	r.mu.Lock()
	ids := make([]string, 0, len(r.insts))
	for id := range r.insts {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	var errs []error
	for _, id := range ids {
		errs = append(errs, r.Stop(ctx, id))
	}
	return errors.Join(errs...)
}

// Logs returns up to max bytes from the end of an instance's output.
func (r *Runtime) Logs(ctx context.Context, id string, max int) ([]byte, error) {
	if _, err := r.get(id); err != nil {
		return nil, err
	}
	b, err := tail(r.logPath(id), int64(max))
	if os.IsNotExist(err) {
		return []byte{}, nil
	}
	return b, err
}

func (r *Runtime) lastLine(id string) string {
	b, _ := tail(r.logPath(id), 300)
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "exited"
	}
	return "exited; last output: " + truncate(s, 200)
}

// trimLog drops the older half of a log over MaxLogBytes (only while
// the instance is down: the running process holds the file open).
func (r *Runtime) trimLog(id string) {
	p := r.logPath(id)
	fi, err := os.Stat(p)
	if err != nil || fi.Size() <= r.o.MaxLogBytes {
		return
	}
	b, err := tail(p, r.o.MaxLogBytes/2)
	if err != nil {
		return
	}
	_ = os.WriteFile(p, append([]byte("[older output dropped]\n"), b...), 0o600)
}

func tail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	_, err = f.ReadAt(b, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return b, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// anonymous is the keychain of public registries.
type anonymous struct{}

func (anonymous) Resolve(authn.Resource) (authn.Authenticator, error) { return authn.Anonymous, nil }

// BasicKeychain authenticates to one registry host with a user name and
// password (Rampart's registry takes a token as the password).
type BasicKeychain struct {
	Host, Username string
	Password       deploy.Value
}

// Resolve returns the credentials for Host, anonymous elsewhere.
func (k BasicKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if res.RegistryStr() == k.Host {
		return &authn.Basic{Username: k.Username, Password: string(k.Password)}, nil
	}
	return authn.Anonymous, nil
}
