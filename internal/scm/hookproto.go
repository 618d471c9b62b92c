package scm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
)

// The hook protocol. receive-pack runs Rampart's pre-receive and
// post-receive hooks (hookScript) with file descriptor 3 connected to the
// server that started it (a socket pair). A hook sends one request of
// NUL-terminated key=value records:
//
//	hook=pre-receive
//	quarantine=PATH          receive-pack's quarantine ($GIT_QUARANTINE_PATH)
//	option=VALUE             one per push option (git push -o)
//	updates=OLD NEW REF\n…   git's ref updates from the hook's standard input
//	end
//
// None of the values can hold a NUL (they come from environment variables
// and ref names), so the framing is exact. The server answers with lines
// for the git client, then "END STATUS" where END is a random marker
// given to receive-pack in $RAMPART_HOOK_END (so no message line can
// forge it) and STATUS 0 accepts the push.

// Limits of the hook protocol.
const (
	maxHookRequest = 1 << 20
	maxRefUpdates  = 1000
	maxPushOptions = 32
	maxOptionLen   = 1024
)

// hookRequest is one hook's call.
type hookRequest struct {
	Hook       string
	Quarantine string
	Options    []string
	Updates    []refUpdate
}

// refUpdate is one ref a push changes.
type refUpdate struct {
	Old, New, Ref string
}

func (u refUpdate) create() bool { return isZero(u.Old) }
func (u refUpdate) delete() bool { return isZero(u.New) }

// branch returns the short branch name of a refs/heads/ ref.
func (u refUpdate) branch() (string, bool) { return strings.CutPrefix(u.Ref, "refs/heads/") }

// readHookRequest reads one framed request.
func readHookRequest(br *bufio.Reader) (hookRequest, error) {
	var raw []byte
	for {
		rec, err := br.ReadSlice(0)
		raw = append(raw, rec...)
		if len(raw) > maxHookRequest {
			return hookRequest{}, apperr.E(apperr.TooLarge, "hook request exceeds %d bytes", maxHookRequest)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(raw) == 0 {
				return hookRequest{}, io.EOF
			}
			return hookRequest{}, apperr.E(apperr.Invalid, "hook request truncated")
		}
		if string(rec) == "end\x00" && (len(raw) == len(rec) || raw[len(raw)-len(rec)-1] == 0) {
			break
		}
	}
	return parseHookRequest(raw)
}

// parseHookRequest decodes the records of a request (ending with "end").
func parseHookRequest(raw []byte) (hookRequest, error) {
	var req hookRequest
	bad := func(format string, args ...any) (hookRequest, error) {
		return hookRequest{}, apperr.E(apperr.Invalid, "malformed hook request: "+format, args...)
	}
	if !bytes.HasSuffix(raw, []byte("\x00end\x00")) && !bytes.Equal(raw, []byte("end\x00")) {
		return bad("no end record")
	}
	recs := strings.Split(string(raw[:len(raw)-len("end\x00")]), "\x00")
	recs = recs[:len(recs)-1] // the empty string after the last NUL
	sawUpdates := false
	for _, rec := range recs {
		k, v, ok := strings.Cut(rec, "=")
		if !ok {
			return bad("record without '='")
		}
		switch k {
		case "hook":
			if v != "pre-receive" && v != "post-receive" {
				return bad("unknown hook %q", clip(v, 40))
			}
			req.Hook = v
		case "quarantine":
			req.Quarantine = v
		case "option":
			if len(req.Options) == maxPushOptions {
				return bad("more than %d push options", maxPushOptions)
			}
			if len(v) > maxOptionLen {
				return bad("push option longer than %d bytes", maxOptionLen)
			}
			req.Options = append(req.Options, v)
		case "updates":
			if sawUpdates {
				return bad("updates given twice")
			}
			sawUpdates = true
			ups, err := parseUpdates(v)
			if err != nil {
				return hookRequest{}, err
			}
			req.Updates = ups
		default:
			return bad("unknown record %q", clip(k, 40))
		}
	}
	if req.Hook == "" || !sawUpdates {
		return bad("hook and updates are required")
	}
	return req, nil
}

// parseUpdates reads git's "OLD NEW REF" lines.
func parseUpdates(s string) ([]refUpdate, error) {
	var out []refUpdate
	for line := range strings.Lines(s) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			continue
		}
		if len(out) == maxRefUpdates {
			return nil, apperr.E(apperr.TooLarge, "a push may update at most %d refs", maxRefUpdates)
		}
		f := strings.Split(line, " ")
		if len(f) != 3 || !hexID(f[0]) || !hexID(f[1]) {
			return nil, apperr.E(apperr.Invalid, "malformed ref update %q", clip(line, 120))
		}
		if err := ValidateRefName(f[2]); err != nil {
			return nil, err
		}
		out = append(out, refUpdate{Old: f[0], New: f[1], Ref: f[2]})
	}
	return out, nil
}

// hexID accepts a full object id (SHA-1 or SHA-256), zero included.
func hexID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// writeHookResponse sends the message lines and the verdict.
func writeHookResponse(w io.Writer, end string, ok bool, lines []string) error {
	var b strings.Builder
	for _, l := range lines {
		// Each line must stay one line: no message can forge the marker.
		b.WriteString(clipLine(l))
		b.WriteByte('\n')
	}
	status := 1
	if ok {
		status = 0
	}
	fmt.Fprintf(&b, "%s %d\n", end, status)
	_, err := io.WriteString(w, b.String())
	return err
}

// clipLine removes control characters (tabs become spaces) from a line
// shown to the git client.
func clipLine(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f:
			return '?'
		}
		return r
	}, s)
}

// hookScript is the text of a hook; receive-pack runs it from the hooks
// directory Rampart points core.hooksPath at.
func hookScript(name string) string {
	return `#!/bin/sh
# Rampart's ` + name + ` hook, written by Rampart at start; do not edit.
# It hands git's ref updates and the push's quarantine to the Rampart server
# running this receive-pack (a socket on file descriptor 3), prints the
# server's messages for the git client and exits with its verdict.
if [ -z "$RAMPART_HOOK_END" ]; then
	echo "rampart: this repository accepts pushes only through Rampart" >&2
	exit 1
fi
{
	printf 'hook=%s\000' ` + name + `
	printf 'quarantine=%s\000' "$GIT_QUARANTINE_PATH"
	i=0
	while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do
		eval "printf 'option=%s\000' \"\$GIT_PUSH_OPTION_$i\""
		i=$((i + 1))
	done
	printf 'updates='
	cat
	printf '\000end\000'
} >&3 || exit 1
status=1
while IFS= read -r line <&3; do
	case "$line" in
	"$RAMPART_HOOK_END 0") status=0; break ;;
	"$RAMPART_HOOK_END "*) break ;;
	esac
	printf '%s\n' "$line" >&2
done
exit $status
`
}

// writeHooks writes the hook scripts (atomically, so a running push never
// sees half a script).
func writeHooks(dir string) error {
	for _, name := range []string{"pre-receive", "post-receive"} {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(hookScript(name)), 0o700); err != nil {
			return fmt.Errorf("scm: write %s hook: %w", name, err)
		}
		if err := os.Chmod(tmp, 0o700); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("scm: write %s hook: %w", name, err)
		}
	}
	return nil
}
