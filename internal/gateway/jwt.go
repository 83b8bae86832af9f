package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// Authorizer errors, reported in $context.authorizer.error.
var (
	ErrNoToken     = errors.New("no token in the identity source")
	ErrBadToken    = errors.New("token is malformed")
	ErrAlgorithm   = errors.New("token algorithm is not allowed")
	ErrUnknownKey  = errors.New("token key id is not in the issuer's JWKS")
	ErrSignature   = errors.New("token signature or claims are invalid")
	ErrAudience    = errors.New("token audience is not allowed")
	ErrKeysMissing = errors.New("issuer's JWKS could not be fetched")
)

// authorizer is an HTTP API JWT authorizer: the signature is checked against the issuer's
// JWKS (cached by jwx's jwk.Cache, refreshed on an unknown kid for key rotation), the
// algorithm pinned to the configured list, then iss, aud (or client_id), exp and nbf.
type authorizer struct {
	name     string
	cfg      config.JWTAuthorizer
	url      string
	cache    *jwk.Cache
	now      func() time.Time
	minFetch time.Duration // between refreshes forced by an unknown kid

	mu         sync.Mutex
	registered bool
	// gate makes every refresh single-flight, bounded by a timeout, and backed off while the
	// issuer is down.
	gate *refreshGate
}

// JWKS fetch limits (finding 6 of issue 14).
const (
	KeyFetchTimeout = 5 * time.Second
	KeyMaxBackoff   = 5 * time.Minute
)

func newAuthorizer(name string, cfg config.JWTAuthorizer, cache *jwk.Cache, now func() time.Time, minFetch time.Duration) *authorizer {
	return &authorizer{name: name, cfg: cfg, url: cfg.JWKS(), cache: cache, now: now, minFetch: minFetch,
		gate: &refreshGate{now: now, timeout: KeyFetchTimeout, minInterval: minFetch, maxBackoff: KeyMaxBackoff}}
}

// refresh fetches the key set through the gate.
func (a *authorizer) refresh(ctx context.Context) (jwk.Set, error) {
	err := a.gate.do(ctx, func(ctx context.Context) error {
		_, err := a.cache.Refresh(ctx, a.url)
		return err
	})
	if err != nil && !errors.Is(err, errNotYet) {
		return nil, fmt.Errorf("%w: %s: %v", ErrKeysMissing, a.url, err)
	}
	// After a refresh (ours, another caller's, or none due) the cache holds what there is.
	set, lerr := a.cache.Lookup(ctx, a.url)
	if lerr != nil {
		if err == nil {
			err = lerr
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrKeysMissing, a.url, err)
	}
	return set, nil
}

// newJWKCache starts the key cache shared by the authorizers.
func newJWKCache(ctx context.Context) (*jwk.Cache, error) {
	c, err := jwk.NewCache(ctx, httprc.NewClient())
	if err != nil {
		return nil, fmt.Errorf("start JWKS cache: %w", err)
	}
	return c, nil
}

// keys returns the cached key set, registering the URL on first use so that the gateway can
// start before the issuer answers.
func (a *authorizer) keys(ctx context.Context) (jwk.Set, error) {
	a.mu.Lock()
	if !a.registered {
		if err := a.cache.Register(ctx, a.url, jwk.WithWaitReady(false), jwk.WithMinInterval(5*time.Minute)); err != nil {
			a.mu.Unlock()
			return nil, fmt.Errorf("%w: register %s: %v", ErrKeysMissing, a.url, err)
		}
		a.registered = true
	}
	a.mu.Unlock()
	if set, err := a.cache.Lookup(ctx, a.url); err == nil {
		return set, nil
	}
	return a.refresh(ctx)
}

// key finds the signing key by kid, refreshing the set once per minFetch when the kid is
// unknown (the issuer rotated its keys).
func (a *authorizer) key(ctx context.Context, kid string) (jwk.Key, error) {
	set, err := a.keys(ctx)
	if err != nil {
		return nil, err
	}
	if k, ok := set.LookupKeyID(kid); ok {
		return k, nil
	}
	set, err = a.refresh(ctx)
	if err != nil {
		return nil, err
	}
	if k, ok := set.LookupKeyID(kid); ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// verify checks a raw token and returns it.
func (a *authorizer) verify(ctx context.Context, raw string) (jwt.Token, error) {
	if raw == "" {
		return nil, ErrNoToken
	}
	msg, err := jws.Parse([]byte(raw))
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, ErrBadToken
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg, ok := hdr.Algorithm()
	if !ok || !slices.Contains(a.cfg.Algorithms, alg.String()) {
		return nil, fmt.Errorf("%w: %q (allowed: %s)", ErrAlgorithm, alg.String(), strings.Join(a.cfg.Algorithms, ", "))
	}
	kid, ok := hdr.KeyID()
	if !ok || kid == "" {
		return nil, fmt.Errorf("%w: the token has no kid", ErrUnknownKey)
	}
	key, err := a.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	pinned, ok := jwa.LookupSignatureAlgorithm(alg.String())
	if !ok {
		return nil, ErrAlgorithm
	}
	tok, err := jwt.Parse([]byte(raw),
		jwt.WithKey(pinned, key),
		jwt.WithValidate(true),
		jwt.WithIssuer(a.cfg.Issuer),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithClock(jwt.ClockFunc(a.now)),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	auds, _ := tok.Audience()
	var clientID string
	_ = tok.Get("client_id", &clientID)
	if clientID != "" {
		auds = append(auds, clientID)
	}
	if !slices.ContainsFunc(auds, func(s string) bool { return slices.Contains(a.cfg.Audience, s) }) {
		return nil, ErrAudience
	}
	return tok, nil
}

// scopes returns the token's scopes from "scope" (space-separated) or "scp" (string or list).
func scopes(tok jwt.Token) []string {
	var out []string
	var s string
	if err := tok.Get("scope", &s); err == nil {
		out = append(out, strings.Fields(s)...)
	}
	var v any
	if err := tok.Get("scp", &v); err == nil {
		switch x := v.(type) {
		case string:
			out = append(out, strings.Fields(x)...)
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					out = append(out, s)
				}
			}
		case []string:
			out = append(out, x...)
		}
	}
	return out
}

// bearer extracts the token from the identity source header: API Gateway accepts it with or
// without the "Bearer " prefix.
func bearer(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return v
}

// identityHeader is the header named by an identity source like "$request.header.Authorization".
func identityHeader(src string) string {
	if h, ok := strings.CutPrefix(src, "$request.header."); ok && h != "" {
		return h
	}
	return "Authorization"
}
