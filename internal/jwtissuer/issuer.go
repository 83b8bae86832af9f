// Package jwtissuer is the local twin's stand-in for Clerk: an RS256 key pair kept in the
// twin's state, the JWKS at /.well-known/jwks.json, and minting of test tokens (a normal
// user, an admin, an expired one) at POST /mint. It only ever runs on loopback.
//
// MintRemote is the client of a running issuer (twin:token, tests through internal/testfix);
// New over a fresh key gives a throwaway issuer (migrate:smoke).
package jwtissuer

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Kinds of test token.
const (
	KindUser    = "user"
	KindAdmin   = "admin"
	KindExpired = "expired"
)

// Issuer signs tokens.
type Issuer struct {
	URL      string // the iss claim, e.g. http://127.0.0.1:17072
	Audience string
	key      *rsa.PrivateKey
	kid      string
	now      func() time.Time
}

// Load reads the key at keyPath, creating it (mode 0600) on first use.
func Load(keyPath, issuerURL, audience string) (*Issuer, error) {
	var key *rsa.PrivateKey
	b, err := os.ReadFile(keyPath)
	switch {
	case err == nil:
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("jwt issuer key %s: not PEM", keyPath)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("jwt issuer key %s: %w", keyPath, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("jwt issuer key %s: not RSA", keyPath)
		}
		key = rk
	case errors.Is(err, os.ErrNotExist):
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, err
		}
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("write jwt issuer key: %w", err)
		}
	default:
		return nil, fmt.Errorf("jwt issuer key: %w", err)
	}
	return New(key, issuerURL, audience), nil
}

// New returns an issuer over an existing key.
func New(key *rsa.PrivateKey, issuerURL, audience string) *Issuer {
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	return &Issuer{URL: issuerURL, Audience: audience, key: key, kid: "twin-" + hex.EncodeToString(sum[:6]), now: time.Now}
}

// Mint returns a signed token for subject of the given kind.
func (i *Issuer) Mint(kind, subject string) (string, error) {
	return i.MintFor(kind, subject, i.Audience)
}

// MintFor is Mint with another audience (to test that the audience is checked).
func (i *Issuer) MintFor(kind, subject, audience string) (string, error) {
	now := i.now()
	c := jwt.MapClaims{
		"iss": i.URL, "aud": audience, "sub": subject,
		"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"azp": "https://zmanim.shtetl.io", "sid": "sess_" + subject,
	}
	switch kind {
	case KindUser:
		c["scope"] = "publisher"
	case KindAdmin:
		c["scope"] = "publisher admin"
	case KindExpired:
		c["scope"] = "publisher"
		c["iat"], c["nbf"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
	default:
		return "", fmt.Errorf("unknown token kind %q: use user, admin or expired", kind)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	t.Header["kid"] = i.kid
	return t.SignedString(i.key)
}

// JWKS returns the public key set.
func (i *Issuer) JWKS() map[string]any {
	pub := i.key.PublicKey
	return map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": i.kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}}
}

// Handler serves the JWKS, an OpenID discovery document and POST /mint?kind=&sub=&aud=.
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(i.JWKS())
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": i.URL, "jwks_uri": i.URL + "/.well-known/jwks.json", "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("POST /mint", func(w http.ResponseWriter, r *http.Request) {
		kind := r.URL.Query().Get("kind")
		if kind == "" {
			kind = KindUser
		}
		sub := r.URL.Query().Get("sub")
		if sub == "" {
			sub = "user_" + kind
		}
		aud := r.URL.Query().Get("aud")
		if aud == "" {
			aud = i.Audience
		}
		tok, err := i.MintFor(kind, sub, aud)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, tok)
	})
	return mux
}

// MintRemote asks a running issuer (the twin's, at baseURL) for a token of kind for sub.
func MintRemote(ctx context.Context, baseURL, kind, sub string) (string, error) {
	return MintRemoteFor(ctx, baseURL, kind, sub, "")
}

// MintRemoteFor is MintRemote with another audience ("" for the issuer's own), so tests can
// check that a verifier refuses a token meant for someone else.
func MintRemoteFor(ctx context.Context, baseURL, kind, sub, audience string) (string, error) {
	q := url.Values{"kind": {kind}, "sub": {sub}}
	if audience != "" {
		q.Set("aud", audience)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(baseURL, "/")+"/mint?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("mint token: %w (is the twin up? `go tool mage twin:up`)", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("mint token: %s", strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}
