package main

import (
	"context"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// auth verifies Clerk-style RS256 tokens against a JWKS. The gateway verifies them first; the
// API checks again (defense in depth), so a request that somehow skips the gateway still
// cannot act as a user.
//
// Key refreshes (issue 14, finding 6) are single-flight (concurrent requests with an unknown
// kid wait for the one fetch), bounded by fetchTimeout (detached from the request that started
// it), at most one per minInterval after a success, and backed off exponentially (up to
// maxBackoff) after failures: during an issuer outage a request with an unknown kid fails fast
// instead of each one fetching.
type auth struct {
	jwksURL, issuer, audience string

	now          func() time.Time
	fetchTimeout time.Duration
	minInterval  time.Duration
	maxBackoff   time.Duration

	mu       sync.Mutex
	keys     map[string]*rsa.PublicKey
	inflight chan struct{} // closed when the running refresh ends
	lastErr  error
	nextTry  time.Time
	failures int
}

func newAuth(ctx context.Context, jwksURL, issuer, audience string) (*auth, error) {
	if jwksURL == "" || issuer == "" || audience == "" {
		return nil, errors.New("ZMANIM_JWKS_URL, ZMANIM_JWT_ISSUER and ZMANIM_JWT_AUDIENCE must be set")
	}
	a := &auth{jwksURL: jwksURL, issuer: issuer, audience: audience,
		now: time.Now, fetchTimeout: 5 * time.Second, minInterval: 30 * time.Second, maxBackoff: 5 * time.Minute}
	if err := a.refresh(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// refreshGated runs one refresh through the gate; ok is false when none was due.
func (a *auth) refreshGated(ctx context.Context) (ok bool, err error) {
	a.mu.Lock()
	if ch := a.inflight; ch != nil {
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		return true, a.lastErr
	}
	if a.now().Before(a.nextTry) {
		a.mu.Unlock()
		return false, nil
	}
	ch := make(chan struct{})
	a.inflight = ch
	a.mu.Unlock()

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.fetchTimeout)
	err = a.refresh(fctx)
	cancel()

	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastErr = err
	if err == nil {
		a.failures = 0
		a.nextTry = a.now().Add(a.minInterval)
	} else {
		a.failures++
		a.nextTry = a.now().Add(min(max(a.minInterval, time.Second)<<min(a.failures-1, 20), a.maxBackoff))
	}
	a.inflight = nil
	close(ch)
	return true, err
}

func (a *auth) refresh(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.jwksURL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch JWKS %s: %w", a.jwksURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch JWKS %s: %s", a.jwksURL, resp.Status)
	}
	var set struct {
		Keys []struct {
			Kty, Kid, N, E, Alg, Use string
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return fmt.Errorf("parse JWKS: %w", err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil {
			continue
		}
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	a.mu.Lock()
	a.keys = keys
	a.mu.Unlock()
	return nil
}

func (a *auth) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	a.mu.Lock()
	k, ok := a.keys[kid]
	a.mu.Unlock()
	if ok {
		return k, nil
	}
	// Key rotation: look again, through the gate.
	if done, err := a.refreshGated(ctx); err != nil {
		return nil, err
	} else if done {
		a.mu.Lock()
		k, ok = a.keys[kid]
		a.mu.Unlock()
		if ok {
			return k, nil
		}
	}
	return nil, fmt.Errorf("unknown key id %q", kid)
}

// claims are the token claims the API uses.
type claims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope"`
}

func (c claims) has(scope string) bool { return slices.Contains(strings.Fields(c.Scope), scope) }

func (a *auth) verify(ctx context.Context, raw string) (*claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return a.key(ctx, kid)
	},
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(a.issuer),
		jwt.WithAudience(a.audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second),
	)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

type ctxKey struct{}

// requireToken rejects requests without a valid token (401), and without the scope when one
// is named (403).
func (a *auth) requireToken(scope string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
			return
		}
		c, err := a.verify(r.Context(), strings.TrimSpace(raw))
		if err != nil {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
			return
		}
		if scope != "" && !c.has(scope) {
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "Forbidden"})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))
	})
}

func claimsOf(r *http.Request) *claims { c, _ := r.Context().Value(ctxKey{}).(*claims); return c }

// originVerify refuses every request that lacks the gateway's secret header: the box is only
// reachable through the edge and the gateway (trap 1 of the spec). An empty secret turns the
// check off, for running the binary by hand.
func originVerify(header, secret string, next http.Handler) http.Handler {
	if secret == "" {
		return next
	}
	want := []byte(secret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(header)), want) != 1 {
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "direct access to the origin is not allowed; use the edge"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
