package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/store"
)

// scriptAdminPassword is the admin password of the server every script
// talks to.
const scriptAdminPassword = "script-admin-password"

// TestMain lets the test binary double as the rampart command inside
// scripts: testscript puts it on $PATH under that name.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"rampart": func() {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := cli.Main(ctx, cli.Env{
				Args:   os.Args[1:],
				Getenv: os.Getenv,
				Stdin:  os.Stdin,
				Stdout: os.Stdout,
				Stderr: os.Stderr,
			})
			stop()
			os.Exit(code)
		},
	})
}

// TestScripts runs the txtar scripts in testdata/script, each against its
// own running server.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		Setup:               startServer,
		RequireExplicitExec: false,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":      cmdExits,
			"json":       cmdJSON,
			"jsonget":    cmdJSONGet,
			"jsonl":      cmdJSONL,
			"tamper":     cmdTamper,
			"enrol-totp": cmdEnrolTOTP,
			"totp":       cmdTOTP,
			"date-ahead": cmdDateAhead,
		},
	})
}

type appKey struct{}

// startServer runs a real Rampart (plain HTTP on 127.0.0.1:0, a data
// directory in the script's work directory) until the script ends, and
// exports where it is:
//
//	SERVER              its URL
//	ADMIN_PASSWORD      the admin password (also in the file admin-password)
//	DATA                its data directory (the SQLite database is $DATA/rampart.db)
//	RAMPART_CONFIG_DIR  where rampart login saves credentials ($WORK/config)
//
// Its log goes to $WORK/server.log.
func startServer(env *testscript.Env) error {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(env.WorkDir, "data")
	cfg.TLS = false
	cfg.Gateway.Addr = "127.0.0.1:0"
	cfg.Gateway.TLS = false
	cfg.AdminPassword = scriptAdminPassword
	cfg.LogLevel = "info"
	cfg.Limits.ShutdownGrace = 5 * time.Second
	logf, err := os.Create(filepath.Join(env.WorkDir, "server.log"))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		logf.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{Logger: logging.New(logf, cfg.LogLevel), Listener: ln})
	if err != nil {
		cancel()
		logf.Close()
		return fmt.Errorf("start app: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	env.Defer(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				env.T().Log("app stopped with error: ", err)
				env.T().FailNow()
			}
		case <-time.After(30 * time.Second):
			env.T().Log("app did not stop within 30s")
			env.T().FailNow()
		}
		logf.Close()
	})
	env.Values[appKey{}] = a
	if err := os.WriteFile(filepath.Join(env.WorkDir, "admin-password"), []byte(scriptAdminPassword+"\n"), 0o600); err != nil {
		return err
	}
	env.Setenv("SERVER", a.URL())
	env.Setenv("ADMIN_PASSWORD", scriptAdminPassword)
	env.Setenv("DATA", cfg.DataDir)
	env.Setenv("RAMPART_CONFIG_DIR", filepath.Join(env.WorkDir, "config"))
	return nil
}

func scriptApp(ts *testscript.TestScript) *app.App { return ts.Value(appKey{}).(*app.App) }

// exits N command [args...] runs a program like exec and checks its exit
// code is N. Its output can be checked with stdout and stderr afterwards.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exits")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exits CODE command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad exit code %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// lookup follows a path such as .token, .scopes.0 or .0.name into a JSON
// value; len(PATH) is the length of the array or object at PATH.
func lookup(v any, path string) (any, error) {
	if inner, ok := strings.CutPrefix(path, "len("); ok && strings.HasSuffix(inner, ")") {
		v, err := lookup(v, strings.TrimSuffix(inner, ")"))
		if err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case map[string]any:
			return float64(len(x)), nil
		case []any:
			return float64(len(x)), nil
		}
		return nil, fmt.Errorf("%T has no length", v)
	}
	path = strings.TrimPrefix(path, ".")
	if path == "" {
		return v, nil
	}
	for p := range strings.SplitSeq(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			e, ok := x[p]
			if !ok {
				return nil, fmt.Errorf("no field %q", p)
			}
			v = e
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil, fmt.Errorf("no element %q in an array of %d", p, len(x))
			}
			v = x[i]
		default:
			return nil, fmt.Errorf("cannot index %T with %q", v, p)
		}
	}
	return v, nil
}

func stdoutJSON(ts *testscript.TestScript) any {
	var v any
	if err := json.Unmarshal([]byte(ts.ReadFile("stdout")), &v); err != nil {
		ts.Fatalf("stdout is not one JSON value: %v", err)
	}
	return v
}

func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// json PATH VALUE checks that the JSON on stdout has VALUE at PATH (strings
// compare unquoted, anything else as compact JSON); ! json PATH checks that
// there is nothing at PATH.
func cmdJSON(ts *testscript.TestScript, neg bool, args []string) {
	v := stdoutJSON(ts)
	switch {
	case neg && len(args) == 1:
		if got, err := lookup(v, args[0]); err == nil {
			ts.Fatalf("%s = %s, want nothing there", args[0], jsonText(got))
		}
	case !neg && len(args) == 2:
		got, err := lookup(v, args[0])
		if err != nil {
			ts.Fatalf("%s: %v", args[0], err)
		}
		if jsonText(got) != args[1] {
			ts.Fatalf("%s = %s, want %s", args[0], jsonText(got), args[1])
		}
	default:
		ts.Fatalf("usage: json PATH VALUE | ! json PATH")
	}
}

// jsonget NAME PATH sets the environment variable NAME to the value at PATH
// in the JSON on stdout.
func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: jsonget NAME PATH")
	}
	got, err := lookup(stdoutJSON(ts), args[1])
	if err != nil {
		ts.Fatalf("%s: %v", args[1], err)
	}
	ts.Setenv(args[0], jsonText(got))
}

// jsonl [MIN] checks that stdout is JSON lines of audit entries, oldest
// first with no gap in their sequence numbers, and that there are at least
// MIN of them.
func cmdJSONL(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 {
		ts.Fatalf("usage: jsonl [MIN]")
	}
	out := ts.ReadFile("stdout")
	if !strings.HasSuffix(out, "\n") {
		ts.Fatalf("JSON lines must end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var prev int64
	for i, l := range lines {
		var e struct {
			Seq    int64  `json:"seq"`
			Action string `json:"action"`
			Hash   string `json:"hash"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			ts.Fatalf("line %d is not JSON: %v", i+1, err)
		}
		if e.Action == "" || len(e.Hash) != 64 {
			ts.Fatalf("line %d is not an audit entry: %s", i+1, l)
		}
		if i > 0 && e.Seq != prev+1 {
			ts.Fatalf("line %d has seq %d after %d", i+1, e.Seq, prev)
		}
		prev = e.Seq
	}
	if len(args) == 1 {
		min, err := strconv.Atoi(args[0])
		if err != nil {
			ts.Fatalf("jsonl: bad count %q", args[0])
		}
		if len(lines) < min {
			ts.Fatalf("%d lines, want at least %d", len(lines), min)
		}
	}
}

// tamper edit|delete SEQ changes the audit log behind the server's back,
// through a connection of its own to $DATA/rampart.db, as someone with
// access to the file would.
func cmdTamper(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tamper edit|delete SEQ")
	}
	seq, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil {
		ts.Fatalf("tamper: bad seq %q", args[1])
	}
	var q string
	switch args[0] {
	case "edit":
		q = "UPDATE audit_log SET actor_name = 'mallory' WHERE seq = ?"
	case "delete":
		q = "DELETE FROM audit_log WHERE seq = ?"
	default:
		ts.Fatalf("tamper: want edit or delete, got %q", args[0])
	}
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(ts.Getenv("DATA"), "rampart.db"))
	ts.Check(err)
	defer db.Close()
	n, err := db.Exec(ctx, q, seq)
	ts.Check(err)
	if n != 1 {
		ts.Fatalf("tamper: no audit entry %d", seq)
	}
}

// enrol-totp USER enrols an authenticator app for USER through the identity
// service, as the account page would, and sets TOTP_SECRET to its seed and
// RECOVERY_CODE to one of the recovery codes it returns.
func cmdEnrolTOTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: enrol-totp USER")
	}
	ctx := context.Background()
	ids := scriptApp(ts).IDs
	u, err := ids.UserByName(ctx, args[0])
	ts.Check(err)
	en, err := ids.BeginTOTP(ctx, u.ID, "Rampart")
	ts.Check(err)
	code, err := totp.GenerateCode(en.Secret, time.Now())
	ts.Check(err)
	codes, err := ids.ConfirmTOTP(ctx, u.ID, code)
	ts.Check(err)
	if len(codes) == 0 {
		ts.Fatalf("enrolling TOTP returned no recovery codes")
	}
	ts.Setenv("TOTP_SECRET", en.Secret)
	ts.Setenv("RECOVERY_CODE", codes[0])
}

// totp NAME sets NAME to a code from the authenticator app enrolled by
// enrol-totp. It is the code of the next 30-second step: the current one
// may have been used already, and the server accepts one step of skew.
func cmdTOTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: totp NAME")
	}
	secret := ts.Getenv("TOTP_SECRET")
	if secret == "" {
		ts.Fatalf("totp: run enrol-totp first")
	}
	code, err := totp.GenerateCode(secret, time.Now().Add(30*time.Second))
	ts.Check(err)
	if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(code) {
		ts.Fatalf("totp: odd code %q", code)
	}
	ts.Setenv(args[0], code)
}

// date-ahead NAME DAYS sets NAME to the date DAYS days from today
// (YYYY-MM-DD, UTC), for expiry dates.
func cmdDateAhead(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: date-ahead NAME DAYS")
	}
	days, err := strconv.Atoi(args[1])
	ts.Check(err)
	ts.Setenv(args[0], time.Now().UTC().AddDate(0, 0, days).Format(time.DateOnly))
}
