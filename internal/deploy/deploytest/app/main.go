// Command app is the small web application the deploy tests run in
// containers. It listens on $PORT and answers:
//
//	/         "VERSION host" (VERSION from the environment)
//	/healthz  200, or 500 when UNHEALTHY is set
//	/secret   whether $DB_PASSWORD is set, and its length (never its value)
//	/probe    the process's uid, NoNewPrivs, Seccomp mode and whether / is writable
//
// With CRASH set it prints a line and exits 3 at once (a crash loop).
package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strings"
)

func main() {
	if os.Getenv("CRASH") != "" {
		fmt.Println("app: crashing on purpose")
		os.Exit(3)
	}
	version := os.Getenv("VERSION")
	host, _ := os.Hostname()
	fmt.Println("app: version", version, "listening on", os.Getenv("PORT"))
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s\n", version, host) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("UNHEALTHY") != "" {
			http.Error(w, "unhealthy", 500)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/secret", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv("DB_PASSWORD")
		fmt.Fprintf(w, "set=%t len=%d\n", ok, len(v))
	})
	mux.HandleFunc("/probe", func(w http.ResponseWriter, r *http.Request) {
		status := map[string]string{}
		if f, err := os.Open("/proc/self/status"); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				k, v, _ := strings.Cut(sc.Text(), ":")
				status[k] = strings.TrimSpace(v)
			}
			f.Close()
		}
		err := os.WriteFile("/probe-write", []byte("x"), 0o644)
		fmt.Fprintf(w, "uid=%d nonewprivs=%s seccomp=%s rootfs_writable=%t\n", os.Getuid(), status["NoNewPrivs"], status["Seccomp"], err == nil)
	})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), mux); err != nil {
		fmt.Println("app:", err)
		os.Exit(1)
	}
}
