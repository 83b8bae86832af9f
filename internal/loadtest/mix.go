package loadtest

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MixSpec is the request mix of loadtest/scenarios.json.
//
// The cache-hit ratio is controlled by HotRatio: with that probability a request takes its
// parameters from a small hot set (HotSet tuples per endpoint), which the edge serves from
// cache after the first request; otherwise it uses parameters unique to the iteration (random
// coordinates to six decimals, a random date, a random name prefix), which no cache holds.
// Endpoints without parameters (publishers, frontend pages) are always hot.
type MixSpec struct {
	HotRatio  float64        `json:"hot_ratio"`
	HotSet    int            `json:"hot_set"`
	Seed      uint64         `json:"seed"`
	Endpoints []EndpointSpec `json:"endpoints"`
	Cities    []City         `json:"cities"`
	// HotDate is the first date of the hot set (YYYY-MM-DD); hot tuples use the dates after it.
	HotDate string `json:"hot_date"`
	// ShieldRatio is the share of requests (in steps of 1%) that ask a region's edge for a key
	// that another region asked for a little earlier: the edge misses (this region never
	// asked), the shield holds it (the other region's request put it there). Without them,
	// shield hits come only from each region's first request for a hot-set key, a few dozen
	// per run, too few to judge a latency target on. One region leads each key (they take
	// turns), so every region gets its share of shield hits; the leader's request is uncached.
	ShieldRatio float64 `json:"shield_ratio,omitempty"`
	// ShieldLag is how many requests of the run (all regions together) pass between one
	// region's request for such a key and the next region's: time for the first response to
	// reach the shield (2000 at 500 req/s is 4 s).
	ShieldLag int `json:"shield_lag,omitempty"`
}

// shieldBlock is the granularity of ShieldRatio: of every shieldBlock consecutive slots,
// ShieldRatio x shieldBlock, spread evenly, are relay slots.
const shieldBlock = 100

// EndpointSpec is one kind of request. Path may hold {lat}, {lon}, {date}, {q}.
type EndpointSpec struct {
	Name   string `json:"name"`
	Method string `json:"method,omitempty"`
	Path   string `json:"path"`
	Kind   string `json:"kind"` // api | private | frontend
	Weight int    `json:"weight"`
}

// City is a hot-set location.
type City struct {
	Name string  `json:"name"`
	Lat  float64 `json:"lat"`
	Lon  float64 `json:"lon"`
}

// MixOptions are the per-run parts of a mix.
type MixOptions struct {
	Target  string   // base URL of the edge
	Regions []string // region names; request i goes to region i mod len
	// RegionHeader sends X-Twin-Region (the twin's latency hooks); off for real CloudFront.
	RegionHeader bool
	// Token is the bearer token for private endpoints. Without it private endpoints are left
	// out of the mix (and Skipped says so).
	Token    string
	HotRatio float64 // overrides the spec when >= 0
	// RegionIndex and RegionCount place a regional runner, whose Regions holds its own region
	// only, among all regions of the run (so that the shield relay keys line up across
	// runners that start together and send the same rate). RegionCount 0: Regions are all.
	RegionIndex, RegionCount int
	// Salt changes the keys no cache is meant to hold (the cold and shield-relay requests)
	// from one run to the next, while the hot set stays the same: the edge caches API
	// answers for an hour, so a second run with the same keys found every "uncached" and
	// "shield" request in the edge cache. Runs with the same salt send the same requests.
	Salt uint64
}

// Mix generates requests; it implements Source.
type Mix struct {
	base     string
	seed     uint64
	hotRatio float64
	hotSet   int
	eps      []compiledEndpoint
	cum      []uint64 // cumulative weights
	total    uint64
	cities   []City
	hotDay   time.Time
	headers  [][3]http.Header // [region][kind]
	nRegions uint64
	// Shield relay (see MixSpec.ShieldRatio): relay slots per shieldBlock, lag in slots, the
	// endpoints it uses, and this mix's place among the run's regions.
	salt      uint64
	relayPer  uint64
	relayLag  uint64
	relayEps  []int
	allRegion uint64 // regions of the whole run
	regionIdx uint64 // this mix's first region among them (regional runner)
	remote    bool   // a regional runner: every iteration is its own region's
	// Skipped lists endpoints left out (e.g. private ones without a token).
	Skipped []string
}

type compiledEndpoint struct {
	name   string
	method string
	kind   Kind
	parts  []string // literal, placeholder, literal, ...
	params bool
}

var placeholders = map[string]bool{"lat": true, "lon": true, "date": true, "q": true}

// NewMix compiles a mix, listing every problem at once.
func NewMix(spec MixSpec, o MixOptions) (*Mix, error) {
	var errs []error
	if len(o.Regions) == 0 {
		o.Regions = []string{"local"}
	}
	hr := spec.HotRatio
	if o.HotRatio >= 0 {
		hr = o.HotRatio
	}
	if hr < 0 || hr > 1 || math.IsNaN(hr) {
		errs = append(errs, fmt.Errorf("hot ratio %v: must be between 0 and 1", hr))
	}
	if spec.HotSet <= 0 {
		errs = append(errs, errors.New("hot_set: must be positive"))
	}
	if len(spec.Cities) == 0 {
		errs = append(errs, errors.New("cities: the hot set needs at least one city"))
	}
	day, err := time.Parse("2006-01-02", spec.HotDate)
	if err != nil {
		errs = append(errs, fmt.Errorf("hot_date %q: want YYYY-MM-DD", spec.HotDate))
	}
	m := &Mix{base: strings.TrimSuffix(o.Target, "/"), seed: spec.Seed, hotRatio: hr, hotSet: spec.HotSet,
		cities: spec.Cities, hotDay: day, nRegions: uint64(len(o.Regions))}
	for _, ep := range spec.Endpoints {
		ce := compiledEndpoint{name: ep.Name, method: ep.Method}
		switch ep.Kind {
		case "api":
			ce.kind = KindAPI
		case "private":
			ce.kind = KindPrivate
		case "frontend":
			ce.kind = KindFrontend
		default:
			errs = append(errs, fmt.Errorf("endpoint %q: kind %q must be api, private or frontend", ep.Name, ep.Kind))
		}
		if !strings.HasPrefix(ep.Path, "/") {
			errs = append(errs, fmt.Errorf("endpoint %q: path %q must start with /", ep.Name, ep.Path))
		}
		if ep.Weight < 0 {
			errs = append(errs, fmt.Errorf("endpoint %q: weight must not be negative", ep.Name))
		}
		rest := ep.Path
		for {
			i := strings.IndexByte(rest, '{')
			if i < 0 {
				ce.parts = append(ce.parts, rest)
				break
			}
			j := strings.IndexByte(rest[i:], '}')
			if j < 0 {
				errs = append(errs, fmt.Errorf("endpoint %q: unclosed { in path", ep.Name))
				break
			}
			name := rest[i+1 : i+j]
			if !placeholders[name] {
				errs = append(errs, fmt.Errorf("endpoint %q: unknown placeholder {%s} (known: lat, lon, date, q)", ep.Name, name))
			}
			ce.parts = append(ce.parts, rest[:i], name)
			ce.params = true
			rest = rest[i+j+1:]
		}
		if ce.kind == KindPrivate && o.Token == "" {
			m.Skipped = append(m.Skipped, ep.Name)
			continue
		}
		if ep.Weight == 0 {
			continue
		}
		m.eps = append(m.eps, ce)
		m.total += uint64(ep.Weight)
		m.cum = append(m.cum, m.total)
	}
	if m.total == 0 {
		errs = append(errs, errors.New("endpoints: no endpoint with a positive weight"))
	}
	if spec.ShieldRatio < 0 || spec.ShieldRatio >= 1 || math.IsNaN(spec.ShieldRatio) {
		errs = append(errs, fmt.Errorf("shield_ratio %v: must be at least 0 and below 1", spec.ShieldRatio))
	}
	if spec.ShieldRatio > 0 && spec.ShieldLag <= 0 {
		errs = append(errs, fmt.Errorf("shield_lag %d: must be positive with a shield_ratio (requests between two regions' requests for a key)", spec.ShieldLag))
	}
	m.salt = o.Salt
	m.allRegion, m.remote = m.nRegions, o.RegionCount > 0
	if m.remote {
		m.allRegion, m.regionIdx = uint64(o.RegionCount), uint64(o.RegionIndex)
		if o.RegionIndex < 0 || o.RegionIndex >= o.RegionCount || len(o.Regions) != 1 {
			errs = append(errs, fmt.Errorf("region index %d of %d: a regional runner has one region and an index below the count", o.RegionIndex, o.RegionCount))
		}
	}
	if spec.ShieldRatio > 0 && m.allRegion > 1 {
		m.relayPer = uint64(math.Round(spec.ShieldRatio * shieldBlock))
		// The lag in slots (one request per region each) is rounded up to whole turns of
		// blocks, so a key's relay slot and leader are the same for every region.
		turn := uint64(shieldBlock) * m.allRegion
		slots := (uint64(max(spec.ShieldLag, 1)) + m.allRegion - 1) / m.allRegion
		m.relayLag = (slots + turn - 1) / turn * turn
		for i, ep := range m.eps {
			if ep.kind == KindAPI && ep.params {
				m.relayEps = append(m.relayEps, i)
			}
		}
		if len(m.relayEps) == 0 {
			m.relayPer = 0
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("request mix: %w", err)
	}
	for _, r := range o.Regions {
		var hs [3]http.Header
		for k := range hs {
			h := http.Header{"User-Agent": {"zops-loadtest/1"}}
			if o.RegionHeader {
				h[RegionHeader] = []string{r}
			}
			if Kind(k) == KindPrivate {
				h["Authorization"] = []string{"Bearer " + o.Token}
			}
			hs[k] = h
		}
		m.headers = append(m.headers, hs)
	}
	return m, nil
}

// splitmix64 is a tiny, good-quality hash used as a stateless random source.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

// Next implements Source.
func (m *Mix) Next(iter uint64, r *Request) {
	r1 := splitmix64(m.seed ^ iter)
	r2 := splitmix64(r1)
	r3 := splitmix64(r2)
	r4 := splitmix64(r3)
	w := r1 % m.total
	ei := 0
	if iter >= 1 && iter <= uint64(len(m.eps)) {
		ei = int(iter - 1) // the first iterations visit every endpoint once, so even a smoke run does
	} else {
		for ei < len(m.cum)-1 && w >= m.cum[ei] {
			ei++
		}
	}
	region := iter % m.nRegions
	var key uint64
	relay := false
	if m.relayPer > 0 && iter > uint64(len(m.eps)) {
		// Slot s holds one request per region of the run; in a relay slot the leading
		// region asks for key s, and the region d turns after it for key s - d*lag, which
		// the leader asked for d*lag slots ago (and the regions between since): by then the
		// shield holds it, this region's edge does not.
		slot, global := iter/m.allRegion, region
		if m.remote {
			slot, global = iter, m.regionIdx
		}
		if b := slot % shieldBlock; (b+1)*m.relayPer/shieldBlock > b*m.relayPer/shieldBlock { // relayPer slots spread evenly over each block
			lead := slot / shieldBlock % m.allRegion
			d := (global + m.allRegion - lead) % m.allRegion
			key, relay = slot-d*m.relayLag, true // may wrap below zero early in a run: still a unique key
			ei = m.relayEps[splitmix64(m.seed^key^0x5e1d)%uint64(len(m.relayEps))]
		}
	}
	ep := &m.eps[ei]
	r.Region = int(region)
	r.Kind = ep.kind
	r.Method = ep.method
	r.Header = m.headers[region][ep.kind]
	if !ep.params {
		r.URL = m.base + ep.parts[0]
		return
	}
	// The hot ratio is a share of all requests: relay slots take theirs out of the rest.
	hot := !relay && unit(r2)*(1-float64(m.relayPer)/shieldBlock) < m.hotRatio
	if relay {
		// The key's parameters depend on the key alone, so every region asks for the same URL.
		r3 = splitmix64(m.seed ^ key ^ 0x9e1a ^ m.salt)
		r4 = splitmix64(r3)
	} else if !hot && m.salt != 0 {
		r3 = splitmix64(r3 ^ m.salt)
		r4 = splitmix64(r3)
	}
	var lat, lon float64
	var date time.Time
	var q string
	if hot {
		k := int(r3 % uint64(m.hotSet))
		c := m.cities[k%len(m.cities)]
		lat, lon = c.Lat, c.Lon
		date = m.hotDay.AddDate(0, 0, k/len(m.cities))
		q = strings.ToLower(c.Name)
		if len(q) > 3 {
			q = q[:3]
		}
	} else {
		lat = -55 + 115*unit(r3) // inhabited latitudes: beyond the polar circles some dates have no sunrise (the API answers 422)
		lon = -180 + 360*unit(r4)
		date = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(r4%5000))
		var b [6]byte
		x := r3 ^ r4
		for i := range b {
			b[i] = 'a' + byte(x%26)
			x /= 26
		}
		q = string(b[:])
	}
	// One allocation: the URL is built in a stack buffer and copied into its string once.
	var arr [256]byte
	buf := append(arr[:0], m.base...)
	for i, p := range ep.parts {
		if i%2 == 0 {
			buf = append(buf, p...)
			continue
		}
		switch p {
		case "lat":
			buf = strconv.AppendFloat(buf, lat, 'f', 6, 64)
		case "lon":
			buf = strconv.AppendFloat(buf, lon, 'f', 6, 64)
		case "date":
			buf = date.AppendFormat(buf, "2006-01-02")
		case "q":
			buf = append(buf, q...)
		}
	}
	r.URL = string(buf)
}
