package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwksServer serves the public halves of its keys, counting fetches; down answers 503, hang
// answers only when the client gives up.
type jwksServer struct {
	srv        *httptest.Server
	mu         sync.Mutex
	keys       map[string]*rsa.PrivateKey
	fetches    atomic.Int64
	down, hang atomic.Bool
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{keys: map[string]*rsa.PrivateKey{}}
	s.add(t, "k1")
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.hang.Load() {
			<-r.Context().Done()
			return
		}
		if s.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var keys []map[string]string
		for kid, k := range s.keys {
			keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) add(t *testing.T, kid string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.keys[kid] = k
	s.mu.Unlock()
}

func (s *jwksServer) token(t *testing.T, kid string) string {
	s.mu.Lock()
	k := s.keys[kid]
	s.mu.Unlock()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "https://issuer.test", "aud": "zmanim", "sub": "u", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Finding 6 (issue 14): with the issuer down, every request carrying an unknown kid fetched
// the JWKS synchronously (no timeout, no back-off). Now: one fetch for a burst, none inside the
// back-off, a bounded wait on a hanging issuer, and recovery after the back-off.
func TestJWKSRefreshSingleFlightTimeoutAndBackoff(t *testing.T) {
	s := newJWKSServer(t)
	ctx := context.Background()
	a, err := newAuth(ctx, s.srv.URL, "https://issuer.test", "zmanim")
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	t0 := time.Now()
	clock.Store(t0.Add(time.Minute).UnixNano()) // past the start-up fetch's min interval
	a.now = func() time.Time { return time.Unix(0, clock.Load()) }
	a.fetchTimeout = 300 * time.Millisecond

	if _, err := a.verify(ctx, s.token(t, "k1")); err != nil {
		t.Fatalf("known key: %v", err)
	}
	// Rotation during an outage: a burst of tokens with the new kid.
	s.add(t, "k2")
	s.down.Store(true)
	start := s.fetches.Load()
	var wg sync.WaitGroup
	var refused atomic.Int64
	tok2 := s.token(t, "k2")
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := a.verify(ctx, tok2); err != nil {
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	if refused.Load() != 50 {
		t.Fatalf("%d of 50 refused during the outage", refused.Load())
	}
	if n := s.fetches.Load() - start; n != 1 {
		t.Fatalf("a burst of 50 unknown-kid tokens during the outage made %d fetches, want 1", n)
	}
	for range 20 {
		_, _ = a.verify(ctx, tok2)
	}
	if n := s.fetches.Load() - start; n != 1 {
		t.Fatalf("requests inside the back-off fetched: %d fetches", n)
	}
	// A hanging issuer: the wait is the fetch timeout, not the client's.
	clock.Add(int64(time.Hour))
	s.down.Store(false)
	s.hang.Store(true)
	began := time.Now()
	if _, err := a.verify(ctx, tok2); err == nil {
		t.Fatal("verified against a hanging issuer")
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("waited %s for a hanging issuer", d)
	}
	// The issuer is back: after the back-off the new key is found.
	s.hang.Store(false)
	clock.Add(int64(time.Hour))
	if _, err := a.verify(ctx, tok2); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}
