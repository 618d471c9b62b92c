package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Detached containers are services rather than jobs: Start launches one
// with `runc run --detach`, its output appended to a log file, and
// returns once it runs. The container outlives the process that started
// it, so a restarted Rampart finds it again with State and List; Delete
// stops and removes it. Detached containers get the same isolation as
// Run's, plus the default seccomp profile below.

// State is a detached container's state as runc reports it.
type State struct {
	ID string `json:"id"`
	// Status is created, running, paused or stopped.
	Status string `json:"status"`
	// Pid is the container's first process on the host (0 when stopped).
	Pid int `json:"pid"`
}

// Start runs spec detached with the default seccomp profile, its
// stdout and stderr appended to logPath. The bundle stays under the
// runtime's directory until Delete. Spec's streams are ignored.
func (r *Runtime) Start(spec Spec, logPath string) error {
	if !validID.MatchString(spec.ID) {
		return fmt.Errorf("container id %q: letters, digits, '-', '_' and '.' only, at most 128", spec.ID)
	}
	if len(spec.Args) == 0 {
		return errors.New("container: no command")
	}
	bundle := filepath.Join(r.dir, spec.ID)
	if err := os.Mkdir(bundle, 0o700); err != nil {
		return fmt.Errorf("container %s: bundle: %w", spec.ID, err)
	}
	cfg, err := r.config(bundle, spec)
	if err != nil {
		os.RemoveAll(bundle)
		return err
	}
	data, err := withSeccomp(cfg)
	if err != nil {
		os.RemoveAll(bundle)
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		os.RemoveAll(bundle)
		return err
	}
	if err := r.startBundle(spec.ID, logPath); err != nil {
		os.RemoveAll(bundle)
		return err
	}
	return nil
}

// Restart starts a stopped detached container again from its bundle
// (the same configuration), appending to the same log.
func (r *Runtime) Restart(id, logPath string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("container id %q invalid", id)
	}
	if _, err := os.Stat(filepath.Join(r.dir, id, "config.json")); err != nil {
		return fmt.Errorf("container %s: no bundle to restart: %w", id, err)
	}
	_ = exec.Command(r.runc, "--root", r.state, "delete", "--force", id).Run()
	return r.startBundle(id, logPath)
}

func (r *Runtime) startBundle(id, logPath string) error {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("container %s: log: %w", id, err)
	}
	defer log.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(r.runc, "--root", r.state, "run", "--detach", "--bundle", filepath.Join(r.dir, id), id)
	// The files are handed to the container's process itself: nothing
	// in this process copies its output, so it survives our restart.
	cmd.Stdin, cmd.Stdout = devnull, log
	cmd.Stderr = log
	// runc's own errors go to its log file (--log would need a path
	// per call); a failed start shows in the container log and in the
	// exit status.
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("container %s: start runc: %w", id, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		err = errors.Join(<-done, errors.New("runc did not return within 30s"))
	}
	if err != nil {
		_ = exec.Command(r.runc, "--root", r.state, "delete", "--force", id).Run()
		tail, _ := tailFile(logPath, 400)
		return fmt.Errorf("container %s: runc run: %v: %s", id, err, lastLine(string(tail)))
	}
	return nil
}

// State returns a detached container's state.
func (r *Runtime) State(id string) (State, error) {
	if !validID.MatchString(id) {
		return State{}, fmt.Errorf("container id %q invalid", id)
	}
	out, err := exec.Command(r.runc, "--root", r.state, "state", id).Output()
	if err != nil {
		if _, serr := os.Stat(filepath.Join(r.state, id)); os.IsNotExist(serr) {
			return State{ID: id, Status: "stopped"}, nil
		}
		return State{}, fmt.Errorf("container %s: runc state: %w", id, err)
	}
	var s State
	if err := json.Unmarshal(out, &s); err != nil {
		return State{}, fmt.Errorf("container %s: runc state: %w", id, err)
	}
	if s.Status == "stopped" {
		s.Pid = 0
	}
	return s, nil
}

// List returns every container runc knows under this runtime.
func (r *Runtime) List() ([]State, error) {
	out, err := exec.Command(r.runc, "--root", r.state, "list", "--format", "json").Output()
	if err != nil {
		return nil, fmt.Errorf("runc list: %w", err)
	}
	var ss []State
	if t := bytes.TrimSpace(out); len(t) > 0 && string(t) != "null" {
		if err := json.Unmarshal(t, &ss); err != nil {
			return nil, fmt.Errorf("runc list: %w", err)
		}
	}
	return ss, nil
}

// Alive reports whether a process id is running (not a zombie): a cheap
// check of a detached container's first process between State calls.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	st := b[i+2]
	return st != 'Z' && st != 'X'
}

// Delete stops a detached container (SIGTERM, then SIGKILL after grace)
// and removes it with its bundle.
func (r *Runtime) Delete(id string, grace time.Duration) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("container id %q invalid", id)
	}
	if s, err := r.State(id); err == nil && s.Status == "running" {
		_ = exec.Command(r.runc, "--root", r.state, "kill", id, "TERM").Run()
		deadline := time.Now().Add(grace)
		for Alive(s.Pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if Alive(s.Pid) {
			_ = exec.Command(r.runc, "--root", r.state, "kill", "--all", id, "KILL").Run()
		}
	}
	out, err := exec.Command(r.runc, "--root", r.state, "delete", "--force", id).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "does not exist") {
		return fmt.Errorf("delete container %s: %s", id, lastLine(string(out)))
	}
	return os.RemoveAll(filepath.Join(r.dir, id))
}

// tailFile returns up to n bytes from the end of a file.
func tailFile(path string, n int64) ([]byte, error) {
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
	return b, err
}

// blockedSyscalls are refused (EPERM) by the default seccomp profile:
// kernel modules, kexec, reboot, mounts and namespaces, tracing other
// processes, BPF, the kernel keyring, clock changes, swap, and other
// calls an application service never needs and an attacker in it would
// want. Everything else is allowed (with no capabilities and
// no_new_privs most of it is harmless anyway).
var blockedSyscalls = []string{
	"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module", "finit_module",
	"fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "get_mempolicy", "init_module",
	"ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
	"mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "open_tree",
	"perf_event_open", "personality", "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace", "query_module",
	"quotactl", "reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "stime", "swapoff", "swapon",
	"sysfs", "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
}

// withSeccomp adds the default seccomp profile to a runtime spec.
func withSeccomp(cfg ociSpec) ([]byte, error) {
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	linux, _ := m["linux"].(map[string]any)
	if linux == nil {
		return nil, errors.New("container: spec has no linux section")
	}
	linux["seccomp"] = map[string]any{
		"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": []any{map[string]any{
			"names": blockedSyscalls, "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
		}},
	}
	return json.Marshal(m)
}
