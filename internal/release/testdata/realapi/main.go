// Command realapi stands in for the Shtetl Zmanim API in its own repository: the smallest
// program that keeps the box's contract (--version; serve on the socket systemd passes;
// GET /health with the version), so a release from another repository can be tested.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--version" {
		fmt.Printf("realapi %s (commit %s, built %s)\n", version, commit, date)
		return
	}
	if len(os.Args) < 2 || os.Args[1] != "serve" || os.Getenv("LISTEN_FDS") != "1" {
		fmt.Fprintln(os.Stderr, "usage: realapi --version | serve (with LISTEN_FDS=1)")
		os.Exit(2)
	}
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","version":%q}`, version)
	})
	fmt.Fprintln(os.Stderr, http.Serve(ln, nil))
	os.Exit(1)
}
