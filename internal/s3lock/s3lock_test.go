package s3lock

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serverClock is the store's clock, moved by the test.
type serverClock struct{ ns atomic.Int64 }

func (c *serverClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *serverClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newServerClock() *serverClock         { c := &serverClock{}; c.ns.Store(time.Now().UnixNano()); return c }
func lockOn(m *Mem, owner string, ttl time.Duration) *Lock {
	return &Lock{Store: m, Key: "locks/x.json", Info: Info{Owner: owner, What: "test"}, TTL: ttl, Renew: time.Hour, Poll: 5 * time.Millisecond}
}

// Finding 9 (issue 14): the holder's "expires" was compared with the taker's clock, so a taker
// whose clock ran ahead took a live lock. Staleness is now the object's age by the server's
// clock: however the taker's clock is set, a lock renewed within its TTL is not taken.
func TestStalenessIsJudgedByTheServerClock(t *testing.T) {
	ctx := context.Background()
	clk := newServerClock()
	m := &Mem{Name: "b", Now: clk.now}
	alice := lockOn(m, "alice", time.Minute)
	if err := alice.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	defer alice.Release(ctx)
	clk.add(50 * time.Second) // younger than the TTL by the server's clock
	bob := lockOn(m, "bob", time.Minute)
	var le *LockedError
	if err := bob.Acquire(ctx); !errors.As(err, &le) || le.Holder.Info.Owner != "alice" {
		t.Fatalf("bob took a live lock: %v", err)
	}
	clk.add(11 * time.Second) // now stale by the server's clock
	if err := bob.Acquire(ctx); err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	if bob.Token() <= alice.Token() {
		t.Fatalf("fencing tokens %d then %d, want increasing", alice.Token(), bob.Token())
	}
	if err := alice.Release(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("alice's release after the takeover: %v, want ErrLost (and bob's lock kept)", err)
	}
	if _, err := m.Read(ctx, "locks/x.json"); err != nil {
		t.Fatal("alice deleted bob's lock")
	}
	_ = bob.Release(ctx)
}

// The holder renews while it runs: a run longer than the TTL keeps its lock.
func TestHolderRenewsWhileItRuns(t *testing.T) {
	ctx := context.Background()
	m := &Mem{Name: "b"}
	alice := lockOn(m, "alice", 300*time.Millisecond)
	alice.Renew = 50 * time.Millisecond
	if err := alice.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second) // more than three TTLs
	for time.Now().Before(deadline) {
		bob := lockOn(m, "bob", 300*time.Millisecond)
		if err := bob.Acquire(ctx); !errors.Is(err, ErrLocked) {
			t.Fatalf("a renewed lock was taken: %v", err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	if !alice.Held() {
		t.Fatalf("alice lost her lock: %v", alice.Err())
	}
	if err := alice.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Read(ctx, "locks/x.json"); !errors.Is(err, ErrNotFound) {
		t.Fatal("not released")
	}
}

// A holder whose lock was taken over (it could not renew) learns it: Lost is closed.
func TestHolderLearnsItLostTheLock(t *testing.T) {
	ctx := context.Background()
	clk := newServerClock()
	m := &Mem{Name: "b", Now: clk.now}
	alice := lockOn(m, "alice", time.Minute)
	alice.Renew = 20 * time.Millisecond
	var down atomic.Bool
	m.Fail = func(op, key string) error {
		if down.Load() && op == "replace" && key == "locks/x.json" {
			return errors.New("injected: network down")
		}
		return nil
	}
	if err := alice.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	clk.add(2 * time.Minute)
	down.Store(false)
	bob := lockOn(m, "bob", time.Minute)
	// Bob's takeover happens while alice cannot renew.
	m.Fail = func(op, key string) error { return nil }
	if err := bob.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-alice.Lost():
	case <-time.After(2 * time.Second):
		t.Fatal("alice did not learn that she lost the lock")
	}
	if !errors.Is(alice.Err(), ErrLost) || alice.Held() {
		t.Fatalf("alice: held %v, err %v", alice.Held(), alice.Err())
	}
	_ = bob.Release(ctx)
}

// A create whose success answer was lost (the SDK retries, the retry gets 412) is our own
// lock, recognised by its ID, not someone else's.
func TestRetriedCreateIsRecognisedAsOurOwn(t *testing.T) {
	ctx := context.Background()
	m := &Mem{Name: "b"}
	var once atomic.Bool
	inner := m
	wrapped := &lostAnswer{Mem: inner, once: &once}
	alice := &Lock{Store: wrapped, Key: "locks/x.json", Info: Info{Owner: "alice"}, TTL: time.Minute, Renew: time.Hour}
	if err := alice.Acquire(ctx); err != nil {
		t.Fatalf("own lock taken for someone else's: %v", err)
	}
	o, _ := m.Read(ctx, "locks/x.json")
	var i Info
	_ = json.Unmarshal(o.Body, &i)
	if i.Owner != "alice" || !alice.Held() {
		t.Fatalf("lock %+v held %v", i, alice.Held())
	}
	if err := alice.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// lostAnswer performs the first create of the lock but answers as a retried PUT would: 412.
type lostAnswer struct {
	*Mem
	once *atomic.Bool
}

func (l *lostAnswer) Create(ctx context.Context, key string, body []byte) (string, error) {
	if strings.HasSuffix(key, ".json") && l.once.CompareAndSwap(false, true) {
		if _, err := l.Mem.Create(ctx, key, body); err != nil {
			return "", err
		}
		return "", ErrExists
	}
	return l.Mem.Create(ctx, key, body)
}

// Waiting queues behind the holder and gets the lock when it is released.
func TestWaitQueuesBehindTheHolder(t *testing.T) {
	ctx := context.Background()
	m := &Mem{Name: "b"}
	alice := lockOn(m, "alice", time.Minute)
	if err := alice.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	bob := lockOn(m, "bob", time.Minute)
	bob.Wait = 5 * time.Second
	done := make(chan error, 1)
	go func() { done <- bob.Acquire(ctx) }()
	time.Sleep(30 * time.Millisecond)
	if err := alice.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = bob.Release(ctx)
}

// Older zmanim-ops clients judge a lock by its "expires" (their own clock): the object keeps
// one in the future while held, so they do not take a live lock over during an upgrade (seen
// on the shared twin: an old client read a lock without it as expired and took it).
func TestLockObjectKeepsExpiresForOlderClients(t *testing.T) {
	ctx := context.Background()
	m := &Mem{Name: "b"}
	l := lockOn(m, "alice", time.Minute)
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	o, _ := m.Read(ctx, "locks/x.json")
	var old struct {
		Expires time.Time `json:"expires"`
	}
	if err := json.Unmarshal(o.Body, &old); err != nil || !old.Expires.After(time.Now().Add(50*time.Second)) {
		t.Fatalf("expires %v (%v) in %s", old.Expires, err, o.Body)
	}
}
