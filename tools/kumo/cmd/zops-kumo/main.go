// Command zops-kumo serves kumo's AWS emulator on a fixed address: the services only.
//
// kumo's own cmd/kumo also links its CLI, whose generated commands import 32 AWS SDK service
// clients (EC2 alone compiles for about a minute); the twin needs only the server, so building
// this instead takes a fraction of the time on a fresh machine. kumo's public package runs the
// same server with every service registered on a random loopback port; this forwards the fixed
// port to it, keeping the Host header the client signed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/sivchari/kumo"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "zops-kumo:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("zops-kumo", flag.ContinueOnError)
	host := fs.String("host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 4566, "port to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv := kumo.NewServer() // KUMO_DATA_DIR persists state as with cmd/kumo
	defer srv.Close()
	target, err := url.Parse(srv.URL)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(*host, strconv.Itoa(*port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	hs := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "zops-kumo: serving kumo on %s\n", addr)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-sig:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = hs.Shutdown(ctx)
	// kumo writes its data snapshots every second in the background (cmd/kumo also saves on
	// shutdown, which the public package does not expose): let the last one land.
	time.Sleep(1500 * time.Millisecond)
	return nil
}
