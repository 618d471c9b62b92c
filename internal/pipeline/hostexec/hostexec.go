// Package hostexec is the pipeline executor that runs job commands as
// plain processes of the machine, for machines without runc. Jobs are not
// isolated (they see the machine and each other, with Rampart's user):
// runs say so in the UI and API. A command runs in its own process group,
// which is killed as a whole at the job's timeout or cancel.
package hostexec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/rampartsec/rampart/internal/pipeline"
)

// Executor runs commands on the host.
type Executor struct{}

var _ pipeline.Executor = (*Executor)(nil)

// New returns the host executor.
func New() *Executor { return &Executor{} }

// Name implements pipeline.Executor.
func (*Executor) Name() string { return pipeline.ExecutorHost }

// Isolated implements pipeline.Executor: host jobs are not isolated.
func (*Executor) Isolated() bool { return false }

// Workspace implements pipeline.Executor: a plain directory (its size is
// not bounded).
func (*Executor) Workspace(dir string, size int64) (pipeline.Workspace, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return pipeline.Workspace{}, err
	}
	return pipeline.Workspace{UID: -1, GID: -1, Cleanup: func() error { return os.RemoveAll(dir) }}, nil
}

// Exec implements pipeline.Executor.
func (*Executor) Exec(ctx context.Context, spec pipeline.ExecSpec) (pipeline.ExecResult, error) {
	if spec.Image != "" {
		return pipeline.ExecResult{}, fmt.Errorf("the host executor cannot run image %s", spec.Image)
	}
	cmd := exec.Command("/bin/sh", "-e", "-c", spec.Script)
	cmd.Dir = spec.Workspace
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + spec.Workspace, "TMPDIR=" + os.TempDir()}, spec.Env...)
	cmd.Stdout, cmd.Stderr = spec.Output, spec.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return pipeline.ExecResult{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var res pipeline.ExecResult
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		res.Killed = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err = <-done
	}
	// Whatever the command left behind in its group goes too.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.ExitCode = 128 + int(ws.Signal())
		}
	case errors.Is(err, exec.ErrWaitDelay):
	default:
		return res, err
	}
	return res, nil
}
