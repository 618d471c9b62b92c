package container

import (
	"fmt"
	"os"
	"strconv"

	"syscall"
)

// MountScratch mounts a tmpfs of size bytes on dir (created when missing),
// owned by uid:gid with mode 0755, so whatever is written there — a
// workspace bind-mounted into a container — cannot exceed size: writes
// past it fail with ENOSPC. It needs root. The returned function unmounts
// it (lazily, if still busy) and removes dir.
func MountScratch(dir string, size int64, uid, gid int) (unmount func() error, err error) {
	if size <= 0 {
		return nil, fmt.Errorf("scratch %s: size must be positive", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	opts := "size=" + strconv.FormatInt(size, 10) + ",mode=0755,uid=" + strconv.Itoa(uid) + ",gid=" + strconv.Itoa(gid)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return nil, fmt.Errorf("scratch %s: mount tmpfs: %w", dir, err)
	}
	return func() error {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("scratch %s: unmount: %w", dir, err)
		}
		return os.RemoveAll(dir)
	}, nil
}
