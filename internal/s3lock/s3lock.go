// Package s3lock is a lease in an S3 bucket, used by releases and site syncs so that one runs
// at a time per bucket.
//
// The lock is an object created with If-None-Match: * (exactly one creator wins) and renewed
// by its holder with If-Match on its ETag. Issue 14 (finding 9) named what a naive lock gets
// wrong, and each is handled here:
//   - staleness is judged by the server's clock: the object's age is the S3 response's Date
//     minus its Last-Modified, never the taker's clock against the holder's "expires";
//   - the holder renews while it runs, so a long but live run is never taken over, and learns
//     (Lost) when it was, and stops;
//   - a retried create that had in fact succeeded is recognised by the lock's random ID, not
//     taken for someone else's lock;
//   - every acquisition gets a fencing token from a counter object (monotonic across holders),
//     which the writes it guards pass along so a stale holder's late write can be refused.
package s3lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors of a Store and of Acquire.
var (
	ErrExists   = errors.New("object exists")
	ErrChanged  = errors.New("object changed since it was read")
	ErrNotFound = errors.New("object not found")
	// ErrLocked means another run holds the lock.
	ErrLocked = errors.New("locked by another run")
	// ErrLost means the lock was taken over while held (it was not renewed in time).
	ErrLost = errors.New("the lock was lost")
)

// Object is a read lock object.
type Object struct {
	Body []byte
	ETag string
	// Age is how long ago the object was written, by the server's clock (response Date minus
	// Last-Modified).
	Age time.Duration
}

// Store is a bucket with conditional writes.
type Store interface {
	// Create writes key only if it does not exist (If-None-Match: *); ErrExists otherwise.
	Create(ctx context.Context, key string, body []byte) (etag string, err error)
	// Replace writes key only if its ETag is etag (If-Match); ErrChanged or ErrNotFound otherwise.
	Replace(ctx context.Context, key string, body []byte, etag string) (string, error)
	// Read returns the object with its server-clock age; ErrNotFound when absent.
	Read(ctx context.Context, key string) (Object, error)
	// Delete removes key only if its ETag is etag; ErrChanged when it differs, nil when absent.
	Delete(ctx context.Context, key, etag string) error
	// Where names the bucket, for messages.
	Where() string
}

// Info is the content of the lock object.
type Info struct {
	Owner   string `json:"owner"` // user@host
	ID      string `json:"id"`    // random per Lock: recognises our own lock
	PID     int    `json:"pid"`
	What    string `json:"what"` // e.g. "release v3"
	Message string `json:"message,omitempty"`
	// TTL: a lock not renewed for this long (server clock) is stale and may be taken over.
	TTL      time.Duration `json:"ttl"`
	Token    int64         `json:"token"`    // fencing token of this acquisition
	Acquired time.Time     `json:"acquired"` // the holder's clock, for people
	// Expires is the holder's clock plus TTL at the last write. This package never reads it
	// (staleness is judged by the server's clock); it is kept so that older zmanim-ops
	// clients, which judged by it, still see a live lock as live.
	Expires time.Time `json:"expires"`
}

func (i Info) String() string {
	s := fmt.Sprintf("%s (pid %d, %s, since %s", i.Owner, i.PID, i.What, i.Acquired.Format(time.RFC3339))
	if i.Message != "" {
		s += fmt.Sprintf(", message %q", i.Message)
	}
	return s + ")"
}

// Lock is one lease.
type Lock struct {
	Store Store
	Key   string // the lock object
	// TokenKey is the fencing counter object (default Key + ".token").
	TokenKey string
	Info     Info
	TTL      time.Duration // staleness; renewed every TTL/3 (Renew overrides)
	Renew    time.Duration
	Wait     time.Duration // queue behind a holder this long; 0 fails at once
	Poll     time.Duration // default 1 s
	Out      io.Writer

	mu      sync.Mutex
	etag    string
	lost    chan struct{}
	lostErr error
	stop    context.CancelFunc
	done    chan struct{}
}

// Holder is the current holder when Acquire fails with ErrLocked.
type Holder struct {
	Info Info
	Age  time.Duration
}

func (h Holder) String() string {
	return fmt.Sprintf("%s, last renewed %s ago", h.Info, h.Age.Round(time.Second))
}

// LockedError carries the holder.
type LockedError struct {
	Holder Holder
	Waited time.Duration
	Where  string
}

func (e *LockedError) Error() string {
	left := e.Holder.Info.TTL - e.Holder.Age
	s := fmt.Sprintf("%v: %s holds %s", ErrLocked, e.Holder, e.Where)
	if e.Waited > 0 {
		s += fmt.Sprintf("; waited %s", e.Waited.Round(time.Second))
	}
	return s + fmt.Sprintf("; if that run died, its lock is stale in %s (it renews every few seconds while alive)", max(left, 0).Round(time.Second))
}

func (e *LockedError) Unwrap() error { return ErrLocked }

func (l *Lock) tokenKey() string {
	if l.TokenKey != "" {
		return l.TokenKey
	}
	return l.Key + ".token"
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Acquire takes the lock, waiting up to Wait behind a live holder, and starts renewing it.
func (l *Lock) Acquire(ctx context.Context) error {
	if l.TTL <= 0 {
		return errors.New("s3lock: TTL must be positive")
	}
	if l.Info.ID == "" {
		l.Info.ID = newID()
	}
	l.Info.TTL = l.TTL
	poll := l.Poll
	if poll <= 0 {
		poll = time.Second
	}
	start := time.Now()
	announced := false
	for {
		h, err := l.try(ctx)
		if err == nil {
			l.startRenewing()
			return nil
		}
		if !errors.Is(err, ErrLocked) {
			return err
		}
		if time.Since(start) >= l.Wait {
			return &LockedError{Holder: h, Waited: l.Wait, Where: l.Store.Where() + "/" + l.Key}
		}
		if !announced && l.Out != nil {
			fmt.Fprintf(l.Out, "  waiting for the lock held by %s\n", h)
			announced = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// try makes one attempt.
func (l *Lock) try(ctx context.Context) (Holder, error) {
	cur, err := l.Store.Read(ctx, l.Key)
	switch {
	case errors.Is(err, ErrNotFound):
		if err := l.create(ctx); !errors.Is(err, ErrLocked) {
			return Holder{}, err
		}
		// Created by someone else (or by our own retried PUT) meanwhile: look at it.
		if cur, err = l.Store.Read(ctx, l.Key); err != nil {
			return Holder{}, ErrLocked
		}
	case err != nil:
		return Holder{}, fmt.Errorf("read the lock %s/%s: %w", l.Store.Where(), l.Key, err)
	}
	var h Info
	if err := json.Unmarshal(cur.Body, &h); err != nil {
		h = Info{Owner: "unknown (unreadable lock object)", TTL: l.TTL}
	}
	if h.ID == l.Info.ID {
		// Our own create succeeded though its answer was lost (a retried PUT): keep it.
		l.Info.Token = h.Token
		l.setETag(cur.ETag)
		return Holder{}, nil
	}
	ttl := h.TTL
	if ttl <= 0 {
		ttl = l.TTL
	}
	if cur.Age <= ttl {
		return Holder{Info: h, Age: cur.Age}, ErrLocked
	}
	// Stale by the server's clock: take it over, conditional on the ETag we judged.
	token, err := l.nextToken(ctx)
	if err != nil {
		return Holder{}, err
	}
	l.Info.Token = token
	l.Info.Acquired = time.Now().UTC()
	body := l.body()
	etag, err := l.Store.Replace(ctx, l.Key, body, cur.ETag)
	if errors.Is(err, ErrChanged) || errors.Is(err, ErrNotFound) {
		return Holder{Info: h, Age: cur.Age}, ErrLocked // someone else was quicker; look again
	}
	if err != nil {
		return Holder{}, fmt.Errorf("take over the stale lock %s/%s: %w", l.Store.Where(), l.Key, err)
	}
	l.setETag(etag)
	if l.Out != nil {
		fmt.Fprintf(l.Out, "  took over a stale lock of %s (not renewed for %s)\n", h, cur.Age.Round(time.Second))
	}
	return Holder{}, nil
}

func (l *Lock) create(ctx context.Context) error {
	token, err := l.nextToken(ctx)
	if err != nil {
		return err
	}
	l.Info.Token = token
	l.Info.Acquired = time.Now().UTC()
	etag, err := l.Store.Create(ctx, l.Key, l.body())
	if errors.Is(err, ErrExists) {
		return ErrLocked // taken meanwhile; the next round reads the holder
	}
	if err != nil {
		return fmt.Errorf("take the lock %s/%s: %w", l.Store.Where(), l.Key, err)
	}
	l.setETag(etag)
	return nil
}

// nextToken increments the fencing counter (compare-and-swap on its ETag).
func (l *Lock) nextToken(ctx context.Context) (int64, error) {
	key := l.tokenKey()
	for range 20 {
		cur, err := l.Store.Read(ctx, key)
		if errors.Is(err, ErrNotFound) {
			if _, err := l.Store.Create(ctx, key, []byte("1")); err == nil {
				return 1, nil
			} else if !errors.Is(err, ErrExists) {
				return 0, fmt.Errorf("fencing counter %s: %w", key, err)
			}
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("fencing counter %s: %w", key, err)
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(string(cur.Body)), 10, 64)
		n++
		if _, err := l.Store.Replace(ctx, key, []byte(strconv.FormatInt(n, 10)), cur.ETag); err == nil {
			return n, nil
		} else if !errors.Is(err, ErrChanged) && !errors.Is(err, ErrNotFound) {
			return 0, fmt.Errorf("fencing counter %s: %w", key, err)
		}
	}
	return 0, fmt.Errorf("fencing counter %s: too much contention", key)
}

// body is the lock object as written now (Expires moves with every renewal).
func (l *Lock) body() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Info.Expires = time.Now().UTC().Add(l.TTL)
	b, _ := json.Marshal(l.Info)
	return b
}

func (l *Lock) setETag(etag string) {
	l.mu.Lock()
	l.etag = etag
	l.mu.Unlock()
}

// Token is the fencing token of the held lock.
func (l *Lock) Token() int64 { return l.Info.Token }

// Held reports whether the lock is held (acquired, not released, not lost).
func (l *Lock) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.etag != "" && l.lostErr == nil
}

// Lost is closed when the lock was taken over while held.
func (l *Lock) Lost() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost == nil {
		l.lost = make(chan struct{})
	}
	return l.lost
}

// Err is ErrLost (wrapped) once the lock was lost, else nil.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lostErr
}

func (l *Lock) startRenewing() {
	every := l.Renew
	if every <= 0 {
		every = l.TTL / 3
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.mu.Lock()
	if l.lost == nil {
		l.lost = make(chan struct{})
	}
	l.stop, l.done = cancel, make(chan struct{})
	l.mu.Unlock()
	go func() {
		defer close(l.done)
		last := time.Now()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			l.mu.Lock()
			etag := l.etag
			l.mu.Unlock()
			next, err := l.Store.Replace(ctx, l.Key, l.body(), etag)
			switch {
			case err == nil:
				l.setETag(next)
				last = time.Now()
			case errors.Is(err, ErrChanged) || errors.Is(err, ErrNotFound):
				l.markLost(fmt.Errorf("%w: %s/%s was taken over", ErrLost, l.Store.Where(), l.Key))
				return
			case ctx.Err() != nil:
				return
			case time.Since(last) > l.TTL:
				l.markLost(fmt.Errorf("%w: could not renew %s/%s for %s: %v", ErrLost, l.Store.Where(), l.Key, l.TTL, err))
				return
			}
		}
	}()
}

func (l *Lock) markLost(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lostErr == nil {
		l.lostErr = err
		close(l.lost)
	}
	if l.Out != nil {
		fmt.Fprintf(l.Out, "  ! %v\n", err)
	}
}

// Release stops renewing and deletes the lock if it is still ours.
func (l *Lock) Release(ctx context.Context) error {
	l.mu.Lock()
	stop, done := l.stop, l.done
	l.stop = nil
	l.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	l.mu.Lock()
	etag, lost := l.etag, l.lostErr
	l.etag = ""
	l.mu.Unlock()
	if etag == "" || lost != nil {
		return lost
	}
	if err := l.Store.Delete(ctx, l.Key, etag); err != nil {
		if errors.Is(err, ErrChanged) {
			return fmt.Errorf("%w: %s/%s was taken over by another run; left it alone", ErrLost, l.Store.Where(), l.Key)
		}
		return fmt.Errorf("release the lock %s/%s: %w", l.Store.Where(), l.Key, err)
	}
	return nil
}
