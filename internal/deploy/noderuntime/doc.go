// Package noderuntime is deploy's embedded target: it runs release
// instances as OCI containers on this machine through runc (package
// container).
//
// # Instances
//
// Start pulls the image by digest from its registry (go-containerregistry,
// with the Options' keychain) and unpacks it once per digest under
// Dir/images; every instance of that digest shares the copy as its
// read-only root filesystem. The container runs detached as a non-root
// user (the image's numeric user, else 65534), with no capabilities,
// no_new_privs, the default seccomp profile of package container, cgroup
// limits on memory, CPU and processes, private tmpfs /tmp, and its own
// network namespace. The release's environment, its resolved secrets and
// PORT are its environment; its output is appended to a log file.
//
// # Networking
//
// The instance's network namespace has only a loopback interface, which
// the runtime brings up. Its port is published on the host's loopback
// interface by a proxy in Rampart: a listener on 127.0.0.1 (a free port)
// whose connections are dialled inside the container's namespace (a
// thread enters it with setns, creates the socket, and leaves). No veth
// pair, bridge or address outside 127.0.0.0/8 is involved, so it works
// wherever runc works as root; the gateway's backends are these
// 127.0.0.1 addresses.
//
// # Supervision and restarts
//
// A supervisor per instance watches its first process; when it exits it
// is started again from the same bundle after a backoff that doubles
// with each restart (BackoffBase to BackoffMax), and the restart count
// and last output line are kept (deploy fails a rollout whose new
// instance crash-loops). Instance records (Dir/instances/ID.json) and the
// containers outlive Rampart: Close stops supervising and publishing but
// leaves the containers running, and Open reattaches — the same host
// port when it is free — restarts records whose container died, and
// removes containers no record names, so nothing runs twice. Rampart
// may also be killed (SIGKILL) anywhere: Stop marks the record as
// stopping before it deletes the container, and Open finishes such
// stops (and those of records whose bundle is gone) instead of
// restarting them; a bundle or log no record names — Start killed
// before it recorded the instance; the bundle holds its secrets — is
// removed.
//
// runc needs root; Available reports whether this machine can run
// instances.
package noderuntime
