package noderuntime

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// inNetNS runs fn on a thread that has entered the network namespace
// of process pid, then returns the thread to Rampart's own namespace.
// Sockets fn creates stay in the container's namespace: that is how the
// loopback proxy reaches an application listening inside it. A thread
// that cannot return is never reused (it ends with its goroutine).
func inNetNS(pid int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		target, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open network namespace of %d: %w", pid, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace of %d: %w", pid, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			// Keep the thread locked: it dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("leave network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// loopbackUp brings the loopback interface of pid's network namespace
// up (a new namespace has it down).
func loopbackUp(pid int) error {
	return inNetNS(pid, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return fmt.Errorf("read loopback flags: %w", err)
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("bring loopback up: %w", err)
		}
		return nil
	})
}

// dialIn connects to port on the loopback interface inside pid's
// network namespace.
func dialIn(ctx context.Context, pid, port int) (net.Conn, error) {
	var c net.Conn
	err := inNetNS(pid, func() error {
		d := net.Dialer{Timeout: 2 * time.Second}
		var err error
		c, err = d.DialContext(ctx, "tcp4", "127.0.0.1:"+strconv.Itoa(port))
		return err
	})
	return c, err
}
