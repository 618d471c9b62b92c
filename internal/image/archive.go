package image

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/ulikunitz/xz"

	"github.com/rampartsec/rampart/internal/apperr"
)

// openArchive returns the tar stream of n when n is a tar archive (plain,
// gzip, bzip2 or xz compressed), as ADD extracts it, or nil when it is any
// other file (which ADD copies as it is).
func openArchive(n *node) (io.ReadCloser, error) {
	rc, err := n.open()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	head, _ := br.Peek(6)
	var r io.Reader
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, nil
		}
		r = gz
	case bytes.HasPrefix(head, []byte("BZh")):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		xr, err := xz.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, nil
		}
		r = xr
	default:
		r = br
	}
	tbr := bufio.NewReaderSize(r, 1024)
	block, err := tbr.Peek(512)
	if err != nil || !isTarHeader(block) {
		rc.Close()
		return nil, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{tbr, rc}, nil
}

// isTarHeader reports whether block is a tar header: a ustar magic, or a
// valid header checksum (old V7 archives).
func isTarHeader(block []byte) bool {
	if len(block) < 512 {
		return false
	}
	if string(block[257:262]) == "ustar" {
		return true
	}
	sum := strings.TrimRight(strings.TrimSpace(string(bytes.TrimRight(block[148:156], "\x00 "))), "\x00")
	want, err := strconv.ParseInt(sum, 8, 64)
	if err != nil || block[0] == 0 {
		return false
	}
	var got int64
	for i, c := range block {
		if i >= 148 && i < 156 {
			c = ' '
		}
		got += int64(c)
	}
	return got == want
}

// chown resolves a --chown value: numeric ids, or user and group names
// looked up in the stage's /etc/passwd and /etc/group.
func (b *builder) chown(ctx context.Context, s *stage, spec string) ([2]int, error) {
	user, group, hasGroup := strings.Cut(spec, ":")
	if user == "" {
		return [2]int{}, apperr.E(apperr.Invalid, "empty user")
	}
	var out [2]int
	var passwd, groups map[string][2]int
	load := func() error {
		if passwd != nil {
			return nil
		}
		t, err := b.stageFiles(ctx, s)
		if err != nil {
			return err
		}
		passwd = parseIDFile(t, "etc/passwd")
		groups = parseIDFile(t, "etc/group")
		return nil
	}
	if uid, err := strconv.Atoi(user); err == nil && uid >= 0 {
		out = [2]int{uid, uid}
	} else {
		if err := load(); err != nil {
			return out, err
		}
		ids, ok := passwd[user]
		if !ok {
			return out, apperr.E(apperr.Invalid, "user %q is not in the image's /etc/passwd", user)
		}
		out = ids
	}
	if hasGroup {
		if gid, err := strconv.Atoi(group); err == nil && gid >= 0 {
			out[1] = gid
		} else {
			if err := load(); err != nil {
				return out, err
			}
			ids, ok := groups[group]
			if !ok {
				return out, apperr.E(apperr.Invalid, "group %q is not in the image's /etc/group", group)
			}
			out[1] = ids[0]
		}
	}
	return out, nil
}

// stageFiles flattens the stage's filesystem as it is so far.
func (b *builder) stageFiles(ctx context.Context, s *stage) (*tree, error) {
	img := s.img
	rc := extractWith(img, s.newLayer)
	defer rc.Close()
	return treeFromTar("stage "+s.name, false, rc, b.lim)
}

// parseIDFile reads name → (id, gid) from /etc/passwd (name:x:uid:gid:…)
// or /etc/group (name:x:gid:…; the id is returned twice).
func parseIDFile(t *tree, p string) map[string][2]int {
	out := map[string][2]int{}
	_, n, err := t.resolve(p, true)
	if err != nil || n == nil || n.data == nil {
		return out
	}
	for line := range strings.SplitSeq(string(n.data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		id, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		gid := id
		if len(f) > 3 {
			if g, err := strconv.Atoi(f[3]); err == nil && strings.HasSuffix(p, "passwd") {
				gid = g
			}
		}
		if _, dup := out[f[0]]; !dup {
			out[f[0]] = [2]int{id, gid}
		}
	}
	return out
}
