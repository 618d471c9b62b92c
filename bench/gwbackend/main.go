// Command gwbackend is the backend of bench/gateway.sh: it answers every
// request with a small fixed text, reading and discarding any body, so
// that both gateways under test proxy to the same, cheap server.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9099", "listen address")
	flag.Parse()
	body := []byte(`{"status":"ok","items":[1,2,3],"note":"benchmark backend"}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, h))
}
