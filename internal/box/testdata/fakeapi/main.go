// Command fakeapi is a tiny stand-in for the API in tests: it speaks the same protocol as
// examples/zmanim-api to its supervisor (socket via LISTEN_FDS, READY=1 on NOTIFY_SOCKET,
// graceful drain on SIGTERM) without needing a database.
//
// Its version is -X main.version, or else the name of the directory holding the binary
// (releases/<version>/zmanim-api), so one build serves as many versions.
//
// Test hooks (environment): ZMANIM_FAIL_IF_VERSION (exit at start, like the real API),
// FAKE_READY_DELAY (sleep before READY=1), FAKE_NEVER_READY=1, FAKE_EXIT_AFTER (exit 1 after
// this long, once serving), FAKE_UNHEALTHY=1 (/health answers 503).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

var version = "dev"

func main() {
	if version == "dev" {
		if exe, err := os.Executable(); err == nil {
			version = filepath.Base(filepath.Dir(exe))
		}
	}
	cmd := "serve"
	if len(os.Args) > 1 {
		cmd = os.Args[1]
	}
	if cmd == "--version" {
		fmt.Printf("zmanim-api %s (commit fake, built now)\n", version)
		return
	}
	if err := serve(); err != nil {
		fmt.Printf(`{"level":"ERROR","msg":"zmanim-api failed","err":%q,"version":%q}`+"\n", err.Error(), version)
		os.Exit(1)
	}
}

func serve() error {
	if v := os.Getenv("ZMANIM_FAIL_IF_VERSION"); v != "" && v == version {
		return fmt.Errorf("ZMANIM_FAIL_IF_VERSION=%s: refusing to start (test hook)", v)
	}
	var ln net.Listener
	var err error
	if n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS")); n >= 1 {
		f := os.NewFile(3, "listen")
		ln, err = net.FileListener(f)
		f.Close()
	} else {
		ln, err = net.Listen("tcp", os.Getenv("ZMANIM_LISTEN"))
	}
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if v := os.Getenv("FAKE_UNHEALTHY"); v == "1" || v == version {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok", "version": version, "pid": strconv.Itoa(os.Getpid())})
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Fprintln(w, version)
	})
	srv := &http.Server{Handler: mux}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf(`{"level":"INFO","msg":"serving","version":%q,"pid":%d}`+"\n", version, os.Getpid())
	if d, err := time.ParseDuration(os.Getenv("FAKE_READY_DELAY")); err == nil {
		time.Sleep(d)
	}
	if os.Getenv("FAKE_NEVER_READY") != "1" {
		notify("READY=1")
	}
	var exitAfter <-chan time.Time
	if d, err := time.ParseDuration(os.Getenv("FAKE_EXIT_AFTER")); err == nil {
		exitAfter = time.After(d)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case err := <-errc:
		return err
	case <-exitAfter:
		return fmt.Errorf("FAKE_EXIT_AFTER: crashing (test hook)")
	case <-sig:
	}
	// The same drain as examples/zmanim-api: stop accepting (the socket stays open in the
	// supervisor, so new connections queue for the new process), answer what was already
	// accepted with Connection: close during a short lame-duck period, then shut down.
	// Shutdown alone drops a just-accepted connection whose request it has not read yet.
	if err := notify("STOPPING=1"); err != nil {
		fmt.Printf(`{"level":"WARN","msg":"sd_notify","err":%q}`+"\n", err.Error())
	}
	fmt.Printf(`{"level":"INFO","msg":"draining","version":%q}`+"\n", version)
	ln.Close()
	srv.SetKeepAlivesEnabled(false)
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

func notify(state string) error {
	p := os.Getenv("NOTIFY_SOCKET")
	if p == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
