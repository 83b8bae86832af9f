package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// twinLatency is the body of the twin edge's PUT /_twin/latency (internal/edge.Latency):
// per-region profiles chosen by X-Twin-Region, durations written like "80ms".
type twinLatency struct {
	Enabled  bool                   `json:"enabled"`
	Profiles map[string]twinProfile `json:"profiles"`
	Default  string                 `json:"default"`
}

type twinProfile struct {
	Name   string  `json:"name,omitempty"`
	Viewer twinHop `json:"viewer"`
	Shield twinHop `json:"shield"`
	Origin twinHop `json:"origin"`
	Pop    string  `json:"pop,omitempty"`
}

type twinHop struct {
	RTT    string `json:"rtt"`
	Jitter string `json:"jitter,omitempty"`
}

func toTwinHop(h Hop) twinHop {
	return twinHop{RTT: h.RTT().String(), Jitter: msDuration(h.JitterMs).String()}
}

// TwinLatencyBody converts region profiles to the twin edge's latency configuration: the
// user-edge hop is the edge's viewer hop, edge-shield its shield hop, shield-origin its origin
// hop. The POP served to a region is its first POP prefix with "-TWIN", so POP checks work.
func TwinLatencyBody(profiles []RegionProfile) ([]byte, error) {
	l := twinLatency{Enabled: true, Profiles: map[string]twinProfile{}}
	for _, p := range profiles {
		tp := twinProfile{Name: p.Name, Viewer: toTwinHop(p.UserToEdge), Shield: toTwinHop(p.EdgeToShield), Origin: toTwinHop(p.ShieldToOrigin)}
		if len(p.PopPrefixes) > 0 {
			tp.Pop = p.PopPrefixes[0] + "-TWIN"
		}
		l.Profiles[p.Name] = tp
	}
	return json.Marshal(l)
}

// EnableTwinLatency switches the twin edge's latency hooks on with the given profiles through
// its control endpoint and returns a function that restores the previous configuration.
func EnableTwinLatency(ctx context.Context, controlURL string, profiles []RegionProfile) (restore func() error, err error) {
	c := &http.Client{Timeout: 10 * time.Second}
	url := controlURL + "/_twin/latency"
	get, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("twin latency hooks: %w", err)
	}
	resp, err := c.Do(get)
	if err != nil {
		return nil, fmt.Errorf("twin latency hooks at %s: %w (is the twin up? `go tool mage twin:up`; or set ZOPS_LOADTEST_TWIN_HOOKS=0 to run without region latency)", url, err)
	}
	prev, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("twin latency hooks: read current configuration: status %d %v", resp.StatusCode, err)
	}
	body, err := TwinLatencyBody(profiles)
	if err != nil {
		return nil, err
	}
	put := func(b []byte) error {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPut, url, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("twin latency hooks: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return fmt.Errorf("twin latency hooks: status %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
		}
		return nil
	}
	if err := put(body); err != nil {
		return nil, err
	}
	return func() error { return put(prev) }, nil
}
