package release

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/onbox"
	"github.com/shtetl/zmanim-ops/internal/s3lock"
)

// packaged writes a manifest for version with the fake binaries as artifacts.
func packaged(t *testing.T, version string) *onbox.Manifest {
	t.Helper()
	dir := t.TempDir()
	var arts []onbox.Artifact
	for arch, src := range map[string]string{"amd64": fakeByArch("amd64"), "arm64": fakeByArch("arm64")} {
		p := filepath.Join(dir, "linux-"+arch, "zmanim-api")
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		b, err := os.ReadFile(src)
		must(t, err)
		must(t, os.WriteFile(p, b, 0o755))
		arts = append(arts, onbox.Artifact{Name: "zmanim-api", OS: "linux", Arch: arch, Path: p})
	}
	pk := &Package{Src: Source{Version: version, Commit: strings.Repeat("c", 40)}, Artifacts: func() []onbox.Artifact { return arts }, OutDir: dir, Who: "tester"}
	must(t, pk.Run(context.Background()))
	return pk.Manifest
}

func fakeByArch(arch string) string {
	if arch == foreignArch {
		return fakeForeign
	}
	return fakeHost
}

func TestPackage(t *testing.T) {
	m := packaged(t, "v1")
	if m.Version != "v1" || m.GoVersion == "" || m.BuiltBy != "tester" || len(m.Artifacts) != 2 {
		t.Fatalf("manifest %+v", m)
	}
	for _, a := range m.Artifacts {
		sum, size, _ := onbox.FileSHA256(a.Path)
		if a.SHA256 != sum || a.Size != size || a.Key != "releases/v1/linux-"+a.Arch+"/zmanim-api" {
			t.Fatalf("artifact %+v (file sha %s size %d)", a, sum, size)
		}
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(m.Artifacts[0].Path)), "manifest.json"))
	must(t, err)
	back, err := onbox.ParseManifest(b)
	if err != nil || back.Version != "v1" || len(back.Artifacts) != 2 {
		t.Fatalf("manifest on disk: %v %+v", err, back)
	}
	// A binary changed after the build is refused.
	a := m.Artifacts[0]
	must(t, os.WriteFile(a.Path, []byte("tampered"), 0o755))
	p := &Package{Src: Source{Version: "v1"}, Artifacts: func() []onbox.Artifact { return []onbox.Artifact{a} }}
	if err := p.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "changed since it was built") {
		t.Fatalf("tampered artifact: %v", err)
	}
	if _, err := onbox.ParseManifest([]byte(`{"version":"v1","artifacts":[{"name":"x"}]}`)); err == nil {
		t.Fatal("a manifest without sha256 parsed")
	}
}

func TestUpload(t *testing.T) {
	ctx := context.Background()
	t.Run("uploads, verifies, then moves the pointer", func(t *testing.T) {
		st := onbox.NewMemStore("rel")
		m := packaged(t, "v1")
		u := &Upload{Store: st, Manifest: func() *onbox.Manifest { return m }, Who: "me"}
		if !strings.Contains(u.String(), "s3://rel/releases/<version>/") {
			t.Errorf("String() = %q", u.String())
		}
		must(t, u.Run(ctx))
		for _, a := range m.Artifacts {
			b, _, err := st.Get(ctx, a.Key)
			must(t, err)
			want, _ := os.ReadFile(a.Path)
			if !bytes.Equal(b, want) {
				t.Fatalf("%s differs", a.Key)
			}
		}
		if _, _, err := st.Get(ctx, onbox.ManifestKey("v1")); err != nil {
			t.Fatal(err)
		}
		p, _ := ReadPointer(ctx, st)
		if p.Version != "v1" || p.By != "me" {
			t.Fatalf("pointer %+v", p)
		}
		// Finish after a later failure puts the pointer back (here: removes it, no previous).
		must(t, u.Finish(ctx, errors.New("deploy failed")))
		if p, _ := ReadPointer(ctx, st); p.Version != "" {
			t.Fatalf("pointer after failure %+v", p)
		}
	})
	t.Run("refuses a released version and overwrites nothing", func(t *testing.T) {
		st := onbox.NewMemStore("rel")
		m := packaged(t, "v1")
		must(t, (&Upload{Store: st, Manifest: func() *onbox.Manifest { return m }}).Run(ctx))
		puts := map[string]int{}
		for k, v := range st.Puts {
			puts[k] = v
		}
		err := (&Upload{Store: st, Manifest: func() *onbox.Manifest { return m }}).Run(ctx)
		if !errors.Is(err, ErrVersionExists) || !strings.Contains(err.Error(), "ZOPS_VERSION") {
			t.Fatalf("second upload: %v", err)
		}
		for k, v := range st.Puts {
			if puts[k] != v {
				t.Fatalf("%s was written again", k)
			}
		}
	})
	t.Run("bucket missing", func(t *testing.T) {
		st := onbox.NewMemStore("gone")
		st.Missing = true
		m := packaged(t, "v1")
		err := (&Upload{Store: st, Manifest: func() *onbox.Manifest { return m }}).Run(ctx)
		if !errors.Is(err, onbox.ErrNoBucket) {
			t.Fatalf("missing bucket: %v", err)
		}
	})
	t.Run("verification catches a bad object", func(t *testing.T) {
		st := onbox.NewMemStore("rel")
		st.Corrupt = func(key string, b []byte) []byte {
			if strings.HasSuffix(key, "/zmanim-api") {
				b[len(b)/2] ^= 0xff
			}
			return b
		}
		m := packaged(t, "v1")
		err := (&Upload{Store: st, Manifest: func() *onbox.Manifest { return m }}).Run(ctx)
		if err == nil || !strings.Contains(err.Error(), "verify upload") {
			t.Fatalf("corrupt upload: %v", err)
		}
		if _, _, err := st.Get(ctx, onbox.ManifestKey("v1")); !errors.Is(err, onbox.ErrNotFound) {
			t.Fatal("the manifest was written although verification failed")
		}
		if p, _ := ReadPointer(ctx, st); p.Version != "" {
			t.Fatal("the pointer moved although verification failed")
		}
	})
	t.Run("resumes an interrupted upload of identical binaries", func(t *testing.T) {
		st := onbox.NewMemStore("rel")
		m := packaged(t, "v1")
		b, _ := os.ReadFile(m.Artifacts[0].Path)
		_, _ = st.Put(ctx, m.Artifacts[0].Key, b, onbox.Cond{})
		must(t, (&Upload{Store: st, Manifest: func() *onbox.Manifest { return m }}).Run(ctx))
	})
}

func TestLock(t *testing.T) {
	ctx := context.Background()
	st := onbox.NewMemStore("rel")
	clk := &serverTime{t: time.Now()}
	lease := &s3lock.Mem{Name: "rel", Now: clk.now}
	alice := &Lock{Store: st, Lease: lease, Info: LockInfo{Owner: "alice@a", PID: 1, Version: "v1", Message: "fix sunset"}, Timeout: time.Minute}
	bob := &Lock{Store: st, Lease: lease, Info: LockInfo{Owner: "bob@b", PID: 2, Version: "v2"}, Timeout: time.Minute, Poll: 10 * time.Millisecond}
	if !strings.Contains(alice.String(), "s3://rel/locks/deploy.json") {
		t.Errorf("String() = %q", alice.String())
	}
	must(t, alice.Run(ctx))
	err := bob.Run(ctx)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "alice@a") || !strings.Contains(err.Error(), "fix sunset") || !strings.Contains(err.Error(), "ZOPS_LOCK_WAIT") {
		t.Fatalf("second lock: %v", err)
	}
	// With a wait, bob queues and gets the lock once alice finishes.
	bob.Wait = 5 * time.Second
	done := make(chan error, 1)
	go func() { done <- bob.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	must(t, alice.Finish(ctx, nil))
	if err := <-done; err != nil {
		t.Fatalf("queued lock: %v", err)
	}
	// A wait that runs out names the holder.
	carol := &Lock{Store: st, Lease: lease, Info: LockInfo{Owner: "carol@c"}, Timeout: time.Minute, Wait: 50 * time.Millisecond, Poll: 10 * time.Millisecond}
	if err := carol.Run(ctx); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "bob@b") {
		t.Fatalf("timed-out wait: %v", err)
	}
	// Stale by the server's clock (not renewed for longer than the timeout: bob's renewals
	// run every 20 s of real time, the server clock jumps): taken over; bob's Finish then
	// leaves the new holder's lock alone.
	clk.add(2 * time.Minute)
	dave := &Lock{Store: st, Lease: lease, Info: LockInfo{Owner: "dave@d"}, Timeout: time.Minute}
	must(t, dave.Run(ctx))
	if dave.Token() <= bob.Token() {
		t.Fatalf("fencing tokens bob %d, dave %d", bob.Token(), dave.Token())
	}
	if err := bob.Finish(ctx, nil); err == nil || !strings.Contains(err.Error(), "taken over") {
		t.Fatalf("finish of a taken-over lock: %v", err)
	}
	if _, err := lease.Read(ctx, LockKey); err != nil {
		t.Fatal("the new holder's lock was deleted")
	}
	must(t, dave.Finish(ctx, nil))
	if _, err := lease.Read(ctx, LockKey); !errors.Is(err, s3lock.ErrNotFound) {
		t.Fatal("lock not released")
	}
	// Missing bucket.
	gone := onbox.NewMemStore("gone")
	gone.Missing = true
	if err := (&Lock{Store: gone, Lease: lease}).Run(ctx); !errors.Is(err, onbox.ErrNoBucket) {
		t.Fatalf("lock in a missing bucket: %v", err)
	}
}

// serverTime is the lease store's clock.
type serverTime struct {
	mu sync.Mutex
	t  time.Time
}

func (s *serverTime) now() time.Time      { s.mu.Lock(); defer s.mu.Unlock(); return s.t }
func (s *serverTime) add(d time.Duration) { s.mu.Lock(); s.t = s.t.Add(d); s.mu.Unlock() }

// Finding 9 (issue 14): a run whose lock was taken over must not move releases/current behind
// the new holder's back: its pointer writes are conditional on the pointer it saw when it took
// the lock, and fail with ErrFenced once the new holder moved it.
func TestPointerWritesAreFencedAfterATakeover(t *testing.T) {
	ctx := context.Background()
	st := onbox.NewMemStore("rel")
	must(t, WritePointer(ctx, st, Pointer{Version: "v1"}))
	clk := &serverTime{t: time.Now()}
	lease := &s3lock.Mem{Name: "rel", Now: clk.now}
	alice := &Lock{Store: st, Lease: lease, Info: LockInfo{Owner: "alice", Version: "v2"}, Timeout: time.Minute}
	must(t, alice.Run(ctx))
	// Alice stalls past the timeout (no renewal reaches the server); bob takes over and releases v3.
	clk.add(2 * time.Minute)
	bob := &Lock{Store: st, Lease: lease, Info: LockInfo{Owner: "bob", Version: "v3"}, Timeout: time.Minute}
	must(t, bob.Run(ctx))
	m3 := packaged(t, "v3")
	must(t, (&Upload{Store: st, Manifest: func() *onbox.Manifest { return m3 }, Guard: bob.Guard}).Run(ctx))
	// Alice wakes up and uploads v2: her pointer write is refused, the pointer stays at v3.
	m2 := packaged(t, "v2")
	err := (&Upload{Store: st, Manifest: func() *onbox.Manifest { return m2 }, Guard: alice.Guard}).Run(ctx)
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("alice's pointer write: %v, want ErrFenced", err)
	}
	if p, _ := ReadPointer(ctx, st); p.Version != "v3" {
		t.Fatalf("pointer %q, want v3", p.Version)
	}
	_ = alice.Finish(ctx, nil)
	must(t, bob.Finish(ctx, nil))
}
