package gateway

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errNotYet means a refresh was not attempted: the last one was too recent (after a success,
// minInterval) or the issuer is in back-off after failures.
var errNotYet = errors.New("JWKS refresh not due yet")

// refreshGate guards the JWKS fetches of one authorizer (issue 14, finding 6). Without it,
// during an issuer outage every request with an unknown kid, or every request before the first
// successful fetch, fetched the key set itself, each as slow as the outage. With it:
//   - single flight: one fetch at a time; concurrent callers wait for its result;
//   - each fetch has its own timeout, detached from the request that happened to start it,
//     so one impatient client does not fail the fetch for the others;
//   - after a success no new fetch for minInterval; after n failures none for
//     max(minInterval, 1s) * 2^(n-1), at most maxBackoff: callers fail fast meanwhile.
type refreshGate struct {
	now         func() time.Time
	timeout     time.Duration
	minInterval time.Duration
	maxBackoff  time.Duration

	mu       sync.Mutex
	inflight chan struct{}
	last     error
	nextTry  time.Time
	failures int
}

// do runs fetch through the gate: it returns fetch's error, the result of the fetch already
// running, or errNotYet (wrapping the last failure, if any) when no fetch is due.
func (g *refreshGate) do(ctx context.Context, fetch func(context.Context) error) error {
	g.mu.Lock()
	if ch := g.inflight; ch != nil {
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.last
	}
	if g.now().Before(g.nextTry) {
		last := g.last
		g.mu.Unlock()
		if last != nil {
			return errors.Join(errNotYet, last)
		}
		return errNotYet
	}
	ch := make(chan struct{})
	g.inflight = ch
	g.mu.Unlock()

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout)
	err := fetch(fctx)
	cancel()

	g.mu.Lock()
	defer g.mu.Unlock()
	g.last = err
	if err == nil {
		g.failures = 0
		g.nextTry = g.now().Add(g.minInterval)
	} else {
		g.failures++
		d := max(g.minInterval, time.Second) << min(g.failures-1, 20)
		g.nextTry = g.now().Add(min(d, g.maxBackoff))
	}
	g.inflight = nil
	close(ch)
	return err
}
