package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// RegionHeader names the emulated viewer region of a request. The edge reads it only while
// latency hooks are enabled; CloudFront itself ignores it.
const RegionHeader = "X-Twin-Region"

// Profile is the network a request from one viewer region crosses, hop by hop:
//   - Viewer: viewer to the edge location, paid by every response (edge hits included);
//   - Shield: edge location to Origin Shield, paid when the edge cache misses;
//   - Origin: Origin Shield to the origin, paid when the shield misses too.
//
// It mirrors loadtest.RegionProfile (user_edge, edge_shield, shield_origin), which the twin
// daemon converts with one Hop{RTT, Jitter} per hop.
type Profile struct {
	Name   string `json:"name,omitempty"`
	Viewer Hop    `json:"viewer"`
	Shield Hop    `json:"shield"`
	Origin Hop    `json:"origin"`
	// Pop is the X-Amz-Cf-Pop value served to this region (e.g. "FRA56-P1"); empty keeps the
	// edge's default.
	Pop string `json:"pop,omitempty"`
}

// Hop is one round trip: RTT with a uniform jitter of ±Jitter.
type Hop struct {
	RTT    Duration `json:"rtt"`
	Jitter Duration `json:"jitter,omitempty"`
}

// Fault modes for origin requests.
const (
	FaultError = "error" // the origin request fails: the viewer gets 502 Error from cloudfront
	FaultSlow  = "slow"  // the origin request is delayed by Fault.Delay
)

// Fault injects failures into the requests the edge sends to origins.
type Fault struct {
	Rate  float64  `json:"rate"` // fraction of origin requests affected, 0..1
	Mode  string   `json:"mode"` // error | slow
	Delay Duration `json:"delay"`
}

// Latency is the latency and fault configuration, off by default. Durations are written in
// JSON as nanoseconds or as strings such as "80ms".
type Latency struct {
	Enabled bool `json:"enabled"`
	// Profiles by region name, chosen by the X-Twin-Region header; Default names the profile
	// used when the header is absent or unknown ("" means no delay).
	Profiles map[string]Profile `json:"profiles"`
	Default  string             `json:"default"`
	Fault    Fault              `json:"fault"`
}

// Validate lists what is wrong with the configuration.
func (l Latency) Validate() error {
	if l.Fault.Rate < 0 || l.Fault.Rate > 1 {
		return fmt.Errorf("fault rate %v: use a fraction between 0 and 1", l.Fault.Rate)
	}
	switch l.Fault.Mode {
	case "", FaultError, FaultSlow:
	default:
		return fmt.Errorf("fault mode %q: use %q or %q", l.Fault.Mode, FaultError, FaultSlow)
	}
	if l.Default != "" {
		if _, ok := l.Profiles[l.Default]; !ok {
			return fmt.Errorf("default profile %q is not one of the profiles", l.Default)
		}
	}
	for name, p := range l.Profiles {
		if p.Viewer.RTT < 0 || p.Shield.RTT < 0 || p.Origin.RTT < 0 || p.Viewer.Jitter < 0 || p.Shield.Jitter < 0 || p.Origin.Jitter < 0 {
			return fmt.Errorf("profile %q: delays cannot be negative", name)
		}
	}
	return nil
}

// hooks holds the live latency configuration.
type hooks struct {
	mu    sync.RWMutex
	cfg   Latency
	rand  func() float64
	sleep func(ctx context.Context, d time.Duration) error
}

func (h *hooks) get() Latency {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.cfg
}

func (h *hooks) set(l Latency) error {
	if err := l.Validate(); err != nil {
		return err
	}
	h.mu.Lock()
	h.cfg = l
	h.mu.Unlock()
	return nil
}

// profile returns the profile of the request, and whether hooks apply to it at all.
func (h *hooks) profile(r *http.Request) (Profile, Fault, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if !h.cfg.Enabled {
		return Profile{}, Fault{}, false
	}
	p, ok := h.cfg.Profiles[r.Header.Get(RegionHeader)]
	if !ok {
		p = h.cfg.Profiles[h.cfg.Default]
	}
	return p, h.cfg.Fault, true
}

// Duration is a time.Duration written in JSON as a string such as "80ms" (a number is read
// as nanoseconds).
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes "80ms".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "80ms" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("duration %s: write it like \"80ms\"", b)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: write it like \"80ms\"", s)
	}
	*d = Duration(v)
	return nil
}

// delay sleeps one round trip of the hop.
func (h *hooks) delay(ctx context.Context, hop Hop) error {
	d, jitter := hop.RTT.D(), hop.Jitter.D()
	if d <= 0 && jitter <= 0 {
		return nil
	}
	d += time.Duration(float64(jitter) * (2*h.rand() - 1))
	if d <= 0 {
		return nil
	}
	return h.sleep(ctx, d)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func defaultRand() float64 { return rand.Float64() }
