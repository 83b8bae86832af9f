package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shtetl/zmanim-ops/internal/onbox"
	"github.com/shtetl/zmanim-ops/internal/s3lock"
)

// ErrLocked means another deploy holds the lock.
var ErrLocked = errors.New("another release holds the deploy lock")

// ErrFenced means the releases/current pointer moved since this run took the lock: another
// release ran meanwhile (this run's lock was taken over), so this run must not write it.
var ErrFenced = errors.New("the release pointer moved since this run took the deploy lock")

// LockInfo is what a release says about itself in the lock object.
type LockInfo struct {
	Owner   string // user@host
	PID     int
	Version string
	Message string
}

// Lock takes the deploy lock (internal/s3lock: an object in the releases bucket created with
// If-None-Match: *, renewed while the release runs, stale only when the server's clock says it
// was not renewed for Timeout, taken over with If-Match). It also reads the ETag of
// releases/current at lock time: the pointer writes of this run are conditional on it
// (Guard), so a run whose lock was taken over cannot move the pointer behind the new holder's
// back. Token is the fencing token passed to the box agent.
type Lock struct {
	Store onbox.Store
	// Lease is where the lock lives; nil means the S3 bucket of Store (an *onbox.S3Store).
	Lease   s3lock.Store
	Info    LockInfo
	Timeout time.Duration // staleness (release.lock_timeout)
	Wait    time.Duration // ZOPS_LOCK_WAIT
	Poll    time.Duration // default 1 s
	Out     io.Writer

	lock       *s3lock.Lock
	pointerTag string // ETag of releases/current when the lock was taken ("" = absent)
}

func (l *Lock) String() string {
	s := fmt.Sprintf("take the deploy lock s3://%s/%s", l.Store.Bucket(), LockKey)
	if l.Wait > 0 {
		s += fmt.Sprintf(" (waiting up to %s)", l.Wait)
	}
	return s
}

func (l *Lock) lease() (s3lock.Store, error) {
	if l.Lease != nil {
		return l.Lease, nil
	}
	if s, ok := l.Store.(*onbox.S3Store); ok {
		return &s3lock.S3{Client: s.Client, Bucket: s.Name}, nil
	}
	return nil, fmt.Errorf("deploy lock: no lease store for %T", l.Store)
}

// Run acquires the lock or fails naming the holder.
func (l *Lock) Run(ctx context.Context) error {
	if err := l.Store.Check(ctx); err != nil {
		return err
	}
	ls, err := l.lease()
	if err != nil {
		return err
	}
	ttl := l.Timeout
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	what := "releasing " + l.Info.Version
	l.lock = &s3lock.Lock{Store: ls, Key: LockKey, TTL: ttl, Wait: l.Wait, Poll: l.Poll, Out: l.Out,
		Info: s3lock.Info{Owner: l.Info.Owner, PID: l.Info.PID, What: what, Message: l.Info.Message}}
	if err := l.lock.Acquire(ctx); err != nil {
		l.lock = nil
		var le *s3lock.LockedError
		if errors.As(err, &le) {
			hint := "wait for it (set ZOPS_LOCK_WAIT=10m to queue)"
			if l.Wait > 0 {
				hint = fmt.Sprintf("waited %s (ZOPS_LOCK_WAIT)", l.Wait)
			}
			return fmt.Errorf("%w: %s; %s; if that release died, its lock goes stale %s after its last renewal", ErrLocked, le.Holder, hint, le.Holder.Info.TTL)
		}
		return err
	}
	_, tag, err := l.Store.Get(ctx, CurrentKey)
	switch {
	case errors.Is(err, onbox.ErrNotFound):
		l.pointerTag = ""
	case err != nil:
		_ = l.lock.Release(context.WithoutCancel(ctx))
		l.lock = nil
		return fmt.Errorf("read the release pointer: %w", err)
	default:
		l.pointerTag = tag
	}
	return nil
}

// Finish releases the lock if this run holds it (only our own: If-Match on our ETag).
func (l *Lock) Finish(ctx context.Context, _ error) error {
	if l.lock == nil {
		return nil
	}
	err := l.lock.Release(ctx)
	l.lock = nil
	if errors.Is(err, s3lock.ErrLost) {
		return fmt.Errorf("the deploy lock was taken over by another release while this one ran (it could not renew it within release.lock_timeout); left it alone: %w", err)
	}
	return err
}

// Held reports whether this run holds the lock.
func (l *Lock) Held() bool { return l.lock != nil && l.lock.Held() }

// Token is the fencing token of the held lock (0 when not held).
func (l *Lock) Token() int64 {
	if l.lock == nil {
		return 0
	}
	return l.lock.Token()
}

// Guard returns the condition for the next write of releases/current by this run and records
// the ETag that write produced (through the returned func), so a later write (Finish putting
// it back) is conditional on it in turn.
func (l *Lock) Guard() *PointerGuard { return &PointerGuard{tag: l.pointerTag, lock: l} }

// PointerGuard makes pointer writes conditional on what the lock holder last saw.
type PointerGuard struct {
	tag  string
	lock *Lock
}

func (g *PointerGuard) cond() onbox.Cond {
	if g.tag == "" {
		return onbox.Cond{IfAbsent: true}
	}
	return onbox.Cond{IfMatch: g.tag}
}

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
