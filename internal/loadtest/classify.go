package loadtest

import (
	"net/http"
	"strconv"
	"strings"
)

// Tier is the cache tier that answered a request.
type Tier uint8

// Tiers, from the user outwards.
const (
	TierUnknown Tier = iota // no CloudFront headers (not behind the edge, or an error)
	TierEdge                // the edge location's cache answered
	TierShield              // the regional tier / Origin Shield answered (edge miss)
	TierOrigin              // the origin answered
)

var tierNames = [...]string{"unknown", "edge", "shield", "origin"}

func (t Tier) String() string { return tierNames[t] }

// Kind is what the request was for, known when it is generated.
type Kind uint8

// Request kinds.
const (
	KindAPI      Kind = iota // cacheable API call (/api/zmanim, /api/cities, /api/publishers)
	KindPrivate              // authenticated call (/api/publisher/*): must never come from a cache
	KindFrontend             // static frontend page or asset: judged on time to first byte
)

var kindNames = [...]string{"api", "private", "frontend"}

func (k Kind) String() string { return kindNames[k] }

// Class is the latency class a response is judged in, named after the spec's targets.
type Class uint8

// Classes. The spec's targets: edge-cached API < 50 ms, Origin Shield hit < 100 ms,
// uncached < 200 ms, frontend TTFB < 100 ms.
const (
	ClassEdgeHit   Class = iota // cacheable API answered by the edge cache
	ClassShieldHit              // cacheable API answered by Origin Shield
	ClassUncached               // cacheable API answered by the origin (or tier unknown)
	ClassPrivate                // authenticated API call (always origin)
	ClassFrontend               // static frontend
	numClasses
)

var classNames = [...]string{"edge_hit", "shield_hit", "uncached", "private", "frontend"}

func (c Class) String() string { return classNames[c] }

// ParseClass parses a class name as used in thresholds and reports.
func ParseClass(s string) (Class, bool) {
	for i, n := range classNames {
		if n == s {
			return Class(i), true
		}
	}
	return 0, false
}

// Classification is what one response tells about the edge.
type Classification struct {
	Tier  Tier
	Class Class
	// Hit reports whether a cache tier (edge or shield) answered.
	Hit bool
	// Leak reports a private response served from a cache: a correctness failure (trap 2),
	// counted as a failed request whatever its status.
	Leak bool
	// Pop is CloudFront's X-Amz-Cf-Pop (e.g. "IAD89-C1"), empty when absent.
	Pop string
}

// Canonical header keys, looked up directly in the map (no canonicalisation per request).
const (
	hdrXCache   = "X-Cache"
	hdrAge      = "Age"
	hdrPop      = "X-Amz-Cf-Pop"
	hdrTwinTier = "X-Twin-Cache-Tier"
)

// Classify derives the tier from response headers.
//
// Production CloudFront sends X-Cache ("Hit from cloudfront", "RefreshHit from cloudfront",
// "Miss from cloudfront", "Error from cloudfront", ...), Age and X-Amz-Cf-Pop. It does not say
// whether Origin Shield answered a miss, so the rule is: an edge Miss that carries a positive
// Age was served from a cached copy upstream (the shield), one without Age came from the
// origin. A RefreshHit means the edge held a stale copy and revalidated it upstream: the
// object was cached but the request paid the trip to the regional tier, so it is a shield hit.
// The twin's edge also sends X-Twin-Cache-Tier, the ground truth, which wins when present.
func Classify(kind Kind, h http.Header) Classification {
	var c Classification
	xc := first(h, hdrXCache)
	switch {
	case hasPrefixFold(xc, "Hit "), hasPrefixFold(xc, "Redirect "),
		hasPrefixFold(xc, "FunctionGeneratedResponse "):
		c.Tier = TierEdge
	case hasPrefixFold(xc, "RefreshHit "):
		c.Tier = TierShield
	case hasPrefixFold(xc, "Miss "):
		if age, err := strconv.Atoi(strings.TrimSpace(first(h, hdrAge))); err == nil && age > 0 {
			c.Tier = TierShield
		} else {
			c.Tier = TierOrigin
		}
	default: // "Error from cloudfront", "LimitExceeded from cloudfront", absent
		c.Tier = TierUnknown
	}
	if t := first(h, hdrTwinTier); t != "" {
		switch t {
		case "edge":
			c.Tier = TierEdge
		case "shield":
			c.Tier = TierShield
		case "origin":
			c.Tier = TierOrigin
		}
	}
	c.Pop = first(h, hdrPop)
	c.Hit = c.Tier == TierEdge || c.Tier == TierShield
	switch kind {
	case KindFrontend:
		c.Class = ClassFrontend
	case KindPrivate:
		c.Class = ClassPrivate
		c.Leak = c.Hit
	default:
		switch c.Tier {
		case TierEdge:
			c.Class = ClassEdgeHit
		case TierShield:
			c.Class = ClassShieldHit
		default:
			c.Class = ClassUncached
		}
	}
	return c
}

func first(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
