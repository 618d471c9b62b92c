// Package container runs one command in an isolated OCI container through
// the runc binary (the OCI reference runtime, Debian package runc). It is
// general: pipelines run their jobs with it and the node runtime of deploy
// can run releases with it.
//
// # Lifecycle
//
// Runtime.Run takes a Spec and, in order:
//
//  1. writes a bundle (config.json and, when the spec has no RootFS, a
//     skeleton root) under Runtime's directory, keyed by the container id;
//  2. starts `runc run` in the foreground, the process's stdio connected
//     to the Spec's streams;
//  3. when the context ends (timeout, cancel) sends SIGKILL to every
//     process of the container (`runc kill --all`), so nothing survives;
//  4. always deletes the container (`runc delete --force`) and its bundle.
//
// # Isolation
//
// Every container gets its own pid, ipc, uts and mount namespaces and, unless
// Spec.Network is set, its own empty network namespace (only a loopback
// device that is down: no network at all). The process runs as a non-root
// user (65534, "nobody", unless the spec names another) with no
// capabilities and no_new_privs; cgroup limits bound CPU, memory and the
// number of processes; /tmp, /var/tmp and /dev/shm are private tmpfs
// mounts of bounded size, so a disk filler meets ENOSPC rather than the
// host's disk. Paths listed in Spec.Masked are hidden (runc's maskedPaths).
//
// The root filesystem is either Spec.RootFS — a directory, typically an OCI
// image unpacked with Unpack — or, when it is empty, the host's own
// filesystem mounted read-only: /usr, /etc, /opt, /var, /srv and /home
// bound read-only into a skeleton root that replicates the host's
// top-level symbolic links (/bin -> usr/bin, …). Tools installed on the
// machine stay usable without any image, and nothing the container does
// can change them.
//
// # Scratch space
//
// MountScratch mounts a size-limited tmpfs on a host directory, so a
// workspace bind-mounted into a container cannot grow past its size.
//
// runc needs root (or a rootless setup, which this package does not
// configure). Available reports whether runc is installed.
package container
