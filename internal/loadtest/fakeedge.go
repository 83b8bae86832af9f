package loadtest

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FakeEdge is a test double of the twin's edge: per-region edge caches in front of one
// shield cache, CloudFront's X-Cache/Age/X-Amz-Cf-Pop headers plus X-Twin-Cache-Tier, and
// region latency from profiles keyed by the X-Twin-Region header. It exists for the package's
// tests, for bench:loadgen, and to try the generator before the real twin edge
// (internal/edge) is up. It is not the twin: no behaviors, cache policies or TTLs.
type FakeEdge struct {
	Profiles map[string]RegionProfile // by region name; none: no added latency
	// OriginDelay is what the origin takes to answer, on top of the hops.
	OriginDelay time.Duration

	mu     sync.Mutex
	edge   map[string]map[string]time.Time // region -> url -> cached at
	shield map[string]time.Time
	rnd    *rand.Rand
}

const fakeEdgeMaxEntries = 200_000

// NewFakeEdge returns a fake edge with the given region profiles.
func NewFakeEdge(profiles []RegionProfile, originDelay time.Duration) *FakeEdge {
	f := &FakeEdge{Profiles: map[string]RegionProfile{}, OriginDelay: originDelay,
		edge: map[string]map[string]time.Time{}, shield: map[string]time.Time{}, rnd: rand.New(rand.NewPCG(1, 2))}
	for _, p := range profiles {
		f.Profiles[p.Name] = p
	}
	return f
}

// ServeHTTP answers every request with a small JSON body after the emulated delay.
func (f *FakeEdge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	region := r.Header.Get(RegionHeader)
	key := r.URL.RequestURI()
	private := strings.HasPrefix(r.URL.Path, "/api/publisher/") || strings.HasPrefix(r.URL.Path, "/api/admin/")
	now := time.Now()

	f.mu.Lock()
	tier, cachedAt := TierOrigin, now
	ec := f.edge[region]
	if ec == nil {
		ec = map[string]time.Time{}
		f.edge[region] = ec
	}
	if !private {
		if t, ok := ec[key]; ok {
			tier, cachedAt = TierEdge, t
		} else if t, ok := f.shield[key]; ok {
			tier, cachedAt = TierShield, t
			ec[key] = t
		} else {
			if len(f.shield) > fakeEdgeMaxEntries {
				f.shield = map[string]time.Time{}
			}
			f.shield[key] = now
			if len(ec) > fakeEdgeMaxEntries {
				ec = map[string]time.Time{}
				f.edge[region] = ec
			}
			ec[key] = now
		}
	}
	var delay time.Duration
	if p, ok := f.Profiles[region]; ok {
		delay = p.UserToEdge.Delay(f.rnd.Float64())
		if tier != TierEdge {
			delay += p.EdgeToShield.Delay(f.rnd.Float64())
		}
		if tier == TierOrigin {
			delay += p.ShieldToOrigin.Delay(f.rnd.Float64())
		}
	}
	f.mu.Unlock()
	if tier == TierOrigin {
		delay += f.OriginDelay
	}
	if delay > 0 {
		time.Sleep(delay)
	}

	h := w.Header()
	h.Set("Content-Type", "application/json")
	switch tier {
	case TierEdge:
		h.Set("X-Cache", "Hit from cloudfront")
	default:
		h.Set("X-Cache", "Miss from cloudfront")
	}
	if tier != TierOrigin {
		h.Set("Age", strconv.Itoa(int(now.Sub(cachedAt)/time.Second)+1))
	}
	h.Set(hdrTwinTier, tier.String())
	if region == "" {
		region = "local"
	}
	h.Set(hdrPop, "TWIN-"+region)
	w.Write([]byte(`{"ok":true}`))
}
