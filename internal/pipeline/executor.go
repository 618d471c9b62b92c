package pipeline

import (
	"context"
	"io"
)

// Executor runs the commands of jobs. The container executor
// (containerexec, through runc) isolates them; the host executor
// (hostexec) runs plain processes and is flagged unisolated.
type Executor interface {
	// Name is "container" or "host".
	Name() string
	// Isolated reports whether jobs are isolated from the machine and
	// from each other.
	Isolated() bool
	// Workspace prepares dir as a job's workspace of at most size bytes
	// (where the executor can bound it).
	Workspace(dir string, size int64) (Workspace, error)
	// Exec runs one command to completion; a non-zero exit is in the
	// result, an error means it could not run at all.
	Exec(ctx context.Context, spec ExecSpec) (ExecResult, error)
}

// Workspace is a prepared job directory.
type Workspace struct {
	// UID and GID own the workspace's files inside the job (-1: the
	// current user).
	UID, GID int
	// Cleanup removes the workspace.
	Cleanup func() error
}

// ExecSpec is one command of a job.
type ExecSpec struct {
	// ID is unique among running commands (letters, digits, '-', '_', '.').
	ID        string
	Workspace string // host directory, the working directory of the command
	Image     string // "" for none (the runner's own filesystem)
	Script    string // run by /bin/sh -e -c
	Env       []string
	Network   bool
	Limits    Limits
	Output    io.Writer // stdout and stderr, interleaved
	// Masked lists host paths the command must not see (the data
	// directory), where the executor can hide them.
	Masked []string
}

// ExecResult is how a command ended.
type ExecResult struct {
	ExitCode int
	Killed   bool // the context ended (timeout, cancel)
	OOM      bool // killed by the kernel for memory
	// PidsLimited is set when a fork failed at the process limit.
	PidsLimited bool
}
