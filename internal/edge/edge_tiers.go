package edge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// result is a response on its way back to the viewer.
type result struct {
	ent    *entry
	tier   string // which tier answered
	xcache string // Hit | RefreshHit | Miss
	store  bool   // the edge may keep it
}

// lookup answers a cacheable request from the edge tier, the shield tier or the origin.
func (e *Edge) lookup(ctx context.Context, q *request, key CacheKey) (result, error) {
	k := key.String()
	ek := k
	if q.pop != "" {
		ek = q.pop + "|" + k
	}
	stale := e.edge.get(ek)
	if stale != nil && stale.fresh(e.opts.Now()) {
		return result{ent: stale, tier: TierEdge, xcache: "Hit"}, nil
	}
	// Edge miss: the edge location asks Origin Shield.
	if q.hooked {
		if err := e.hooks.delay(ctx, q.profile.Shield); err != nil {
			return result{}, err
		}
	}
	res, err := e.fromShield(ctx, q, k, stale)
	if err != nil {
		return result{}, err
	}
	res.xcache = "Miss"
	if stale != nil && stale.hasValidators() && sameRepresentation(stale, res.ent) {
		res.xcache = "RefreshHit"
	}
	if res.store {
		e.edge.put(ek, res.ent)
	}
	return res, nil
}

// flight is one origin fetch that concurrent requests for the same key wait for, as
// CloudFront collapses simultaneous requests for an object into one origin request.
type flight struct {
	done chan struct{}
	res  result
	err  error
}

func (e *Edge) fromShield(ctx context.Context, q *request, k string, edgeStale *entry) (result, error) {
	sh := e.shield.get(k)
	if sh != nil && sh.fresh(e.opts.Now()) {
		return result{ent: sh, tier: TierShield, store: true}, nil
	}
	e.flMu.Lock()
	if f, ok := e.flights[k]; ok {
		e.flMu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return result{}, ctx.Err()
		}
		if f.err == nil && f.res.store {
			return result{ent: f.res.ent, tier: TierOrigin, store: true}, nil
		}
		// Not cacheable: every viewer gets its own origin response.
		return e.fetchOrigin(ctx, q, k, sh, edgeStale)
	}
	f := &flight{done: make(chan struct{})}
	e.flights[k] = f
	e.flMu.Unlock()
	f.res, f.err = e.fetchOrigin(ctx, q, k, sh, edgeStale)
	e.flMu.Lock()
	delete(e.flights, k)
	e.flMu.Unlock()
	close(f.done)
	return f.res, f.err
}

// fetchOrigin asks the origin, conditionally when a stale copy has validators, and stores
// what the policy allows in the shield tier.
func (e *Edge) fetchOrigin(ctx context.Context, q *request, k string, sh, edgeStale *entry) (result, error) {
	cond := sh
	if cond == nil || !cond.hasValidators() {
		cond = edgeStale
	}
	if cond != nil && !cond.hasValidators() {
		cond = nil
	}
	resp, err := e.toOrigin(ctx, q, http.MethodGet, cond)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	now := e.opts.Now()
	if resp.StatusCode == http.StatusNotModified && cond != nil {
		// Revalidated: the stored body stays, headers the 304 carries replace the old ones.
		h := cond.header.Clone()
		for name, v := range resp.Header {
			if !isHopByHop(name) {
				h[name] = v
			}
		}
		f := ResponseFreshness(q.policy, cond.status, h, now, e.opts.ErrorCachingMinTTL)
		ent := &entry{path: q.uri, status: cond.status, header: h, body: cond.body, date: now, expires: now.Add(f.TTL)}
		if f.Store {
			e.shield.put(k, ent)
		}
		return result{ent: ent, tier: TierOrigin, store: f.Store}, nil
	}
	// Read it all: an object above MaxObjectSize is served whole but not stored.
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, fmt.Errorf("read origin %s response: %w", q.origin.id, err)
	}
	h := http.Header{}
	for name, v := range resp.Header {
		if !isHopByHop(name) {
			h[name] = v
		}
	}
	date := now
	if a, err := strconv.Atoi(resp.Header.Get("Age")); err == nil && a > 0 {
		date = now.Add(-time.Duration(a) * time.Second)
	}
	h.Del("Age")
	f := ResponseFreshness(q.policy, resp.StatusCode, h, now, e.opts.ErrorCachingMinTTL)
	ent := &entry{path: q.uri, status: resp.StatusCode, header: h, body: body, date: date, expires: now.Add(f.TTL)}
	store := f.Store && int64(len(body)) <= e.opts.MaxObjectSize
	if store {
		e.shield.put(k, ent)
	}
	e.log.Debug("edge origin fetch", "uri", q.uri, "status", resp.StatusCode, "store", store, "ttl", f.TTL, "reason", f.Reason)
	return result{ent: ent, tier: TierOrigin, store: store}, nil
}

func sameRepresentation(a, b *entry) bool {
	if a.status != b.status {
		return false
	}
	if et := a.header.Get("ETag"); et != "" {
		return et == b.header.Get("ETag")
	}
	lm := a.header.Get("Last-Modified")
	return lm != "" && lm == b.header.Get("Last-Modified") && bytes.Equal(a.body, b.body)
}
