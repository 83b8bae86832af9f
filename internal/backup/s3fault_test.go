package backup

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/restic"
)

// faultProxy is a TCP proxy in front of the S3 server. Armed with a byte budget, it stalls
// every connection (stops forwarding in both directions, like a hung network) once clients
// have sent that many bytes; Heal lets traffic flow again. Refuse makes new connections fail.
type faultProxy struct {
	ln       net.Listener
	upstream string
	budget   atomic.Int64 // bytes clients may still send while armed
	armed    atomic.Bool
	refuse   atomic.Bool
	mu       sync.Mutex
	healed   chan struct{}
}

func newFaultProxy(t *testing.T, upstream string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, upstream: upstream, healed: make(chan struct{})}
	close(p.healed)
	t.Cleanup(func() { ln.Close() })
	go p.serve()
	return p
}

func (p *faultProxy) Addr() string { return p.ln.Addr().String() }

// StallAfter stalls all traffic once clients have sent n more bytes.
func (p *faultProxy) StallAfter(n int64) {
	p.mu.Lock()
	p.healed = make(chan struct{})
	p.mu.Unlock()
	p.budget.Store(n)
	p.armed.Store(true)
}

// Heal lets stalled and new traffic flow.
func (p *faultProxy) Heal() {
	p.armed.Store(false)
	p.refuse.Store(false)
	p.mu.Lock()
	select {
	case <-p.healed:
	default:
		close(p.healed)
	}
	p.mu.Unlock()
}

func (p *faultProxy) gate(ctx context.Context) {
	if !p.armed.Load() || p.budget.Load() > 0 {
		return
	}
	p.mu.Lock()
	h := p.healed
	p.mu.Unlock()
	select {
	case <-h:
	case <-ctx.Done():
	}
}

func (p *faultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			c.Close()
			continue
		}
		go p.handle(c)
	}
}

func (p *faultProxy) handle(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	defer u.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pipe := func(dst, src net.Conn, fromClient bool) {
		defer cancel()
		buf := make([]byte, 16<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.gate(ctx)
				if ctx.Err() != nil {
					return
				}
				if fromClient && p.armed.Load() {
					p.budget.Add(-int64(n))
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					return
				}
				return
			}
		}
	}
	go pipe(u, c, true)
	pipe(c, u, false)
}

func TestFaultS3StallsMidBackup(t *testing.T) {
	t.Parallel()
	j := testJob(t, 40000)
	j.RedisAddr = ""
	// Route the repository through the fault proxy.
	ep, _ := url.Parse(strings.TrimPrefix(j.Repo.URL, "s3:"))
	proxy := newFaultProxy(t, ep.Host)
	j.Repo.StopGrace = 3 * time.Second
	j.Repo.URL = strings.Replace(j.Repo.URL, ep.Host, proxy.Addr(), 1)
	ctx := ctxT(t, 4*time.Minute)
	if _, err := j.Run(ctx); err != nil {
		t.Fatalf("healthy run: %v", err)
	}
	execSQL(t, j.PG, "UPDATE cities SET name = name || '-v2'") // new data to upload

	// The S3 connection hangs after 256 KiB of the next upload: the job must fail within its
	// deadline, save no snapshot, and leave nothing behind that breaks the next run.
	proxy.StallAfter(256 << 10)
	jctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	start := time.Now()
	_, err := j.Run(jctx)
	cancel()
	if err == nil {
		t.Fatal("backup through a stalled S3 succeeded")
	}
	t.Logf("stalled run failed after %.1fs: %v", time.Since(start).Seconds(), err)
	if !strings.Contains(err.Error(), "no snapshot was saved") {
		t.Errorf("error should say no snapshot was saved: %v", err)
	}
	proxy.Heal()
	if n := countSnapshots(t, j.Repo, TagPG); n != 1 {
		t.Fatalf("pg snapshots after the failed run = %d, want 1", n)
	}

	// S3 refusing connections: a clean, prompt failure too.
	proxy.refuse.Store(true)
	jctx, cancel = context.WithTimeout(ctx, 15*time.Second)
	_, err = j.Run(jctx)
	cancel()
	if err == nil {
		t.Fatal("backup with S3 unreachable succeeded")
	}
	t.Logf("unreachable: %v", err)
	proxy.Heal()

	if _, err := j.Run(ctx); err != nil {
		t.Fatalf("next run after the fault: %v", err)
	}
	if n := countSnapshots(t, j.Repo, TagPG); n != 2 {
		t.Errorf("pg snapshots = %d, want 2", n)
	}
	if _, err := j.Repo.Check(ctx, restic.CheckOptions{ReadDataSubset: "100%"}); err != nil {
		t.Fatalf("restic check after the fault: %v", err)
	}
}
