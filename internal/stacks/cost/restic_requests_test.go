package cost

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/restic"
	"github.com/shtetl/zmanim-ops/internal/testenv"
	"github.com/shtetl/zmanim-ops/internal/tools"
)

// s3Counter counts S3 requests by how S3 bills them: PUT, COPY, POST and LIST at the PUT rate,
// GET and HEAD at the GET rate, DELETE free.
type s3Counter struct {
	mu             sync.Mutex
	put, list, get float64
}

func (c *s3Counter) ServeHTTPWith(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.Trim(r.URL.Path, "/")
		c.mu.Lock()
		switch {
		case r.Method == http.MethodPut || r.Method == http.MethodPost:
			c.put++
		case r.Method == http.MethodGet && (!strings.Contains(path, "/") || r.URL.Query().Has("list-type") || r.URL.Query().Has("prefix")):
			c.list++ // a bucket-level GET lists
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
			c.get++
		}
		c.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (c *s3Counter) take() config.ResticRequests {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := config.ResticRequests{Put: c.put, List: c.list, Get: c.get}
	c.put, c.list, c.get = 0, 0, 0
	return r
}

// TestResticRequestsPerWALShipment measures what one WAL shipment costs in S3 requests: the
// project's restic wrapper, the pinned restic and a real S3 server (versitygw, started here on
// its own port and directory) behind a counting proxy, with restic's cache kept between runs
// as on the box. The default assumption (cost.wal_run) must cover the measured shipment of a
// new 16 MiB segment, and not overstate it more than twice.
func TestResticRequestsPerWALShipment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds/uses versitygw and restic")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	gw, err := tools.Ensure(ctx, "versitygw")
	if err != nil {
		requireOrSkip(t, err)
	}
	bin, err := tools.Ensure(ctx, "restic")
	if err != nil {
		requireOrSkip(t, err)
	}
	key := randHex(8)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "s3", "wal-cost"), 0o755) // a posix bucket is a directory
	cmd := exec.Command(gw, "--access", "AK"+key, "--secret", "SK"+key, "--port", addr, "--region", "us-east-1", "posix", filepath.Join(dir, "s3"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatal("versitygw did not listen")
		}
	}
	up, _ := url.Parse("http://" + addr)
	counter := &s3Counter{}
	proxy := httptest.NewServer(counter.ServeHTTPWith(httputil.NewSingleHostReverseProxy(up)))
	defer proxy.Close()

	repo := &restic.Repo{Bin: bin, URL: "s3:" + proxy.URL + "/wal-cost/restic", Password: "pw-" + key,
		Env: []string{"AWS_ACCESS_KEY_ID=AK" + key, "AWS_SECRET_ACCESS_KEY=SK" + key}, Options: []string{"s3.bucket-lookup=path"},
		CacheDir: filepath.Join(dir, "cache")}
	if _, err := repo.EnsureInit(ctx); err != nil {
		t.Fatal(err)
	}
	wal := filepath.Join(dir, "wal")
	os.MkdirAll(wal, 0o755)
	segment := 0
	// ship is internal/backup.Job.ShipWAL's sequence: open (EnsureInit), then a backup of the
	// archive directory that saves nothing when nothing changed.
	// (A shipment with nothing new is not measured here: the archive sits under /tmp, whose
	// changing mtime makes every run a new snapshot; on the box the parents stay still.)
	var opening config.ResticRequests
	ship := func() config.ResticRequests {
		t.Helper()
		segment++
		b := make([]byte, 16<<20) // one WAL segment, incompressible
		rand.Read(b)
		os.WriteFile(filepath.Join(wal, fmt.Sprintf("%024X", segment)), b, 0o600)
		counter.take()
		if _, err := repo.EnsureInit(ctx); err != nil {
			t.Fatal(err)
		}
		opening = counter.take()
		if _, err := repo.Backup(ctx, restic.BackupOptions{Tags: []string{"zops", "wal"}, Host: "box", Paths: []string{wal}, SkipIfUnchanged: true}); err != nil {
			t.Fatal(err)
		}
		r := counter.take()
		return config.ResticRequests{Put: opening.Put + r.Put, List: opening.List + r.List, Get: opening.Get + r.Get}
	}
	for i := 0; i < 4; i++ { // some history: index files and snapshots accumulate
		ship()
	}
	changed := ship()
	t.Logf("one WAL shipment of a new 16 MiB segment (EnsureInit + backup, cache kept): put=%g list=%g get=%g, of which EnsureInit put=%g list=%g get=%g",
		changed.Put, changed.List, changed.Get, opening.Put, opening.List, opening.Get)

	def := config.DefaultCostUsage().WALRun
	for _, c := range []struct {
		what          string
		assumed, real float64
	}{{"put", def.Put, changed.Put}, {"list", def.List, changed.List}, {"get", def.Get, changed.Get}} {
		if c.assumed < c.real || c.assumed > 2*c.real+2 {
			t.Errorf("cost.wal_run.%s = %g, measured %g for a shipment of a new segment: update DefaultCostUsage", c.what, c.assumed, c.real)
		}
	}
}

func requireOrSkip(t *testing.T, err error) {
	t.Helper()
	if testenv.Required() {
		t.Fatal(err)
	}
	t.Skip(err)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
