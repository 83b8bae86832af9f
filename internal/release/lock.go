package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// ErrLocked means another deploy holds the lock.
var ErrLocked = errors.New("another release holds the deploy lock")

// LockInfo is the content of the lock object.
type LockInfo struct {
	Owner    string    `json:"owner"` // user@host
	PID      int       `json:"pid"`
	Version  string    `json:"version"`
	Message  string    `json:"message,omitempty"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"` // a lock past this is stale and may be taken over
}

func (l LockInfo) String() string {
	s := fmt.Sprintf("%s (pid %d, releasing %s, since %s", l.Owner, l.PID, l.Version, l.Acquired.Format(time.RFC3339))
	if l.Message != "" {
		s += fmt.Sprintf(", message %q", l.Message)
	}
	return s + ")"
}

// Lock takes the deploy lock: an object in the releases bucket created with
// If-None-Match: *, so exactly one of two concurrent releases gets it. A lock older than
// Timeout is stale (its holder died) and is taken over with If-Match on its ETag, so two
// takers cannot both win. With Wait > 0 the step queues behind the holder for that long.
type Lock struct {
	Store   onbox.Store
	Info    LockInfo
	Timeout time.Duration // staleness
	Wait    time.Duration // ZOPS_LOCK_WAIT
	Poll    time.Duration // default 1 s
	Out     io.Writer
	now     func() time.Time

	etag string // held lock
}

func (l *Lock) String() string {
	s := fmt.Sprintf("take the deploy lock s3://%s/%s", l.Store.Bucket(), LockKey)
	if l.Wait > 0 {
		s += fmt.Sprintf(" (waiting up to %s)", l.Wait)
	}
	return s
}

func (l *Lock) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

// Run acquires the lock or fails naming the holder.
func (l *Lock) Run(ctx context.Context) error {
	if err := l.Store.Check(ctx); err != nil {
		return err
	}
	poll := l.Poll
	if poll <= 0 {
		poll = time.Second
	}
	deadline := l.clock().Add(l.Wait)
	announced := false
	for {
		holder, err := l.try(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrLocked) {
			return err
		}
		if !l.clock().Before(deadline) {
			if l.Wait > 0 {
				return fmt.Errorf("%w: %s; waited %s (ZOPS_LOCK_WAIT)", ErrLocked, holder, l.Wait)
			}
			return fmt.Errorf("%w: %s; wait for it (set ZOPS_LOCK_WAIT=10m to queue) or, if that release died, the lock expires at %s", ErrLocked, holder, holder.Expires.Format(time.RFC3339))
		}
		if !announced && l.Out != nil {
			fmt.Fprintf(l.Out, "  waiting for the deploy lock held by %s\n", holder)
			announced = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

func (l *Lock) try(ctx context.Context) (LockInfo, error) {
	now := l.clock().UTC()
	info := l.Info
	info.Acquired = now
	info.Expires = now.Add(l.Timeout)
	body, _ := json.Marshal(info)
	etag, err := l.Store.Put(ctx, LockKey, body, onbox.Cond{IfAbsent: true})
	if err == nil {
		l.etag = etag
		return info, nil
	}
	if !errors.Is(err, onbox.ErrPrecondition) {
		return LockInfo{}, fmt.Errorf("take the deploy lock: %w", err)
	}
	cur, curTag, err := l.Store.Get(ctx, LockKey)
	if errors.Is(err, onbox.ErrNotFound) {
		return LockInfo{}, fmt.Errorf("%w: released meanwhile", ErrLocked) // retry at once next round
	}
	if err != nil {
		return LockInfo{}, fmt.Errorf("read the deploy lock: %w", err)
	}
	var holder LockInfo
	if err := json.Unmarshal(cur, &holder); err != nil {
		holder = LockInfo{Owner: "unknown (unreadable lock object)", Expires: now.Add(-time.Second)}
	}
	if now.After(holder.Expires) {
		etag, err := l.Store.Put(ctx, LockKey, body, onbox.Cond{IfMatch: curTag})
		if err == nil {
			l.etag = etag
			if l.Out != nil {
				fmt.Fprintf(l.Out, "  took over a stale lock of %s\n", holder)
			}
			return info, nil
		}
		if !errors.Is(err, onbox.ErrPrecondition) {
			return LockInfo{}, fmt.Errorf("take over the stale deploy lock: %w", err)
		}
	}
	return holder, ErrLocked
}

// Finish releases the lock if this run holds it (only our own: If-Match on our ETag).
func (l *Lock) Finish(ctx context.Context, _ error) error {
	if l.etag == "" {
		return nil
	}
	err := l.Store.Delete(ctx, LockKey, onbox.Cond{IfMatch: l.etag})
	l.etag = ""
	if errors.Is(err, onbox.ErrPrecondition) {
		return fmt.Errorf("the deploy lock was taken over by another release while this one ran (it outlived release.lock_timeout); left it alone")
	}
	return err
}

// Held reports whether this run holds the lock.
func (l *Lock) Held() bool { return l.etag != "" }

// DefaultOwner is user@host.
func DefaultOwner() string {
	u := os.Getenv("USER")
	if u == "" {
		u = os.Getenv("LOGNAME")
	}
	if u == "" {
		u = fmt.Sprintf("uid%d", os.Getuid())
	}
	h, _ := os.Hostname()
	return u + "@" + h
}
