package loadtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// RegionHeader is the request header that names the emulated region of a request. The twin's
// edge honours it only when its latency hooks are enabled; CloudFront ignores it.
const RegionHeader = "X-Twin-Region"

// DefaultRegionsFile is the region profile file, relative to the repository root.
const DefaultRegionsFile = "loadtest/regions.json"

// ErrUnknownRegion is returned for a region that has no profile.
var ErrUnknownRegion = errors.New("unknown region")

// RegionProfiles is the content of loadtest/regions.json: for each user region, the round
// trips of the hops a request crosses on its way to the origin. The twin's edge reads it to
// delay requests (user to edge on every request, edge to shield on an edge miss, shield to
// origin on a shield miss); the load generator reads it to name and validate regions.
type RegionProfiles struct {
	// Origin and Shield are the AWS regions of the origin and of CloudFront Origin Shield.
	Origin  string          `json:"origin_region"`
	Shield  string          `json:"shield_region"`
	Regions []RegionProfile `json:"regions"`
	Sources []FigureSource  `json:"sources"`
}

// RegionProfile is one user region.
type RegionProfile struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// UserToEdge is the round trip from a user in the region to the nearest CloudFront edge.
	UserToEdge Hop `json:"user_edge"`
	// EdgeToShield is the round trip from that edge location to Origin Shield.
	EdgeToShield Hop `json:"edge_shield"`
	// ShieldToOrigin is the round trip from Origin Shield to the origin.
	ShieldToOrigin Hop `json:"shield_origin"`
	// PopPrefixes are the IATA codes X-Amz-Cf-Pop starts with for users in this region
	// (used to check in production that a runner was served by the expected edge).
	PopPrefixes []string `json:"pop_prefixes"`
}

// Hop is a round-trip time with a uniform jitter, and the source of the figure.
type Hop struct {
	RTTMs    float64 `json:"rtt_ms"`
	JitterMs float64 `json:"jitter_ms"`
	Source   string  `json:"source"` // id of an entry in RegionProfiles.Sources
}

// FigureSource documents where a figure comes from.
type FigureSource struct {
	ID       string `json:"id"`
	Citation string `json:"citation"`
	Note     string `json:"note"`
}

// RTT is the hop's mean round-trip time.
func (h Hop) RTT() time.Duration { return msDuration(h.RTTMs) }

// Delay maps u in [0,1) to a round trip within RTT ± jitter. The caller supplies u so that
// it controls the randomness (a seeded generator in tests).
func (h Hop) Delay(u float64) time.Duration {
	d := h.RTTMs + h.JitterMs*(2*u-1)
	if d < 0 {
		d = 0
	}
	return msDuration(d)
}

func msDuration(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// Added is the delay a request from this region pays for the hops up to the tier that
// answered: every request crosses user-edge, an edge miss also edge-shield, a shield miss
// also shield-origin.
func (r RegionProfile) Added(t Tier) time.Duration {
	d := r.UserToEdge.RTT()
	if t == TierShield || t == TierOrigin {
		d += r.EdgeToShield.RTT()
	}
	if t == TierOrigin {
		d += r.ShieldToOrigin.RTT()
	}
	return d
}

// PopMatches reports whether a CloudFront POP id (X-Amz-Cf-Pop) is one expected for the region.
func (r RegionProfile) PopMatches(pop string) bool {
	for _, p := range r.PopPrefixes {
		if strings.HasPrefix(strings.ToUpper(pop), p) {
			return true
		}
	}
	return false
}

// LoadRegionProfiles reads and validates a region profile file.
func LoadRegionProfiles(path string) (*RegionProfiles, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read region profiles: %w", err)
	}
	p, err := ParseRegionProfiles(b)
	if err != nil {
		return nil, fmt.Errorf("region profiles %s: %w", path, err)
	}
	return p, nil
}

// ParseRegionProfiles decodes and validates region profiles, listing every problem at once.
func ParseRegionProfiles(b []byte) (*RegionProfiles, error) {
	var p RegionProfiles
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	var errs []error
	src := map[string]bool{}
	for _, s := range p.Sources {
		if s.ID == "" || s.Citation == "" {
			errs = append(errs, fmt.Errorf("source %q: id and citation are required", s.ID))
		}
		src[s.ID] = true
	}
	if len(p.Regions) == 0 {
		errs = append(errs, errors.New("no regions"))
	}
	seen := map[string]bool{}
	for i, r := range p.Regions {
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("region %d: name is required", i+1))
		}
		if seen[r.Name] {
			errs = append(errs, fmt.Errorf("region %q: defined twice", r.Name))
		}
		seen[r.Name] = true
		for _, h := range []struct {
			name string
			hop  Hop
		}{{"user_edge", r.UserToEdge}, {"edge_shield", r.EdgeToShield}, {"shield_origin", r.ShieldToOrigin}} {
			switch {
			case h.hop.RTTMs < 0 || h.hop.JitterMs < 0:
				errs = append(errs, fmt.Errorf("region %q %s: rtt_ms and jitter_ms must not be negative", r.Name, h.name))
			case h.hop.JitterMs > h.hop.RTTMs:
				errs = append(errs, fmt.Errorf("region %q %s: jitter_ms %.1f exceeds rtt_ms %.1f", r.Name, h.name, h.hop.JitterMs, h.hop.RTTMs))
			}
			if !src[h.hop.Source] {
				errs = append(errs, fmt.Errorf("region %q %s: source %q is not listed in sources (every figure needs a documented source)", r.Name, h.name, h.hop.Source))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &p, nil
}

// Names lists the region names in file order.
func (p *RegionProfiles) Names() []string {
	out := make([]string, len(p.Regions))
	for i, r := range p.Regions {
		out[i] = r.Name
	}
	return out
}

// Lookup returns the named region's profile.
func (p *RegionProfiles) Lookup(name string) (RegionProfile, error) {
	for _, r := range p.Regions {
		if r.Name == name {
			return r, nil
		}
	}
	known := p.Names()
	sort.Strings(known)
	return RegionProfile{}, fmt.Errorf("%w %q: known regions are %s (profiles in %s)", ErrUnknownRegion, name, strings.Join(known, ", "), DefaultRegionsFile)
}

// Select resolves a comma-separated region list ("" means all regions in the file).
func (p *RegionProfiles) Select(list string) ([]RegionProfile, error) {
	if strings.TrimSpace(list) == "" {
		return p.Regions, nil
	}
	var out []RegionProfile
	var errs []error
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		r, err := p.Lookup(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// RepoPath resolves a path relative to the repository root (the nearest directory upwards
// from the working directory that holds go.mod and a loadtest folder), so targets and tests
// find the data files wherever they run from.
func RepoPath(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, rel)); err == nil {
				return filepath.Join(dir, rel), nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find %s: not found in any parent of the working directory; run from the zmanim-ops checkout", rel)
		}
		dir = parent
	}
}
