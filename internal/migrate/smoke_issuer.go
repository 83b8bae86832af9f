package migrate

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/shtetl/zmanim-ops/internal/jwtissuer"
)

// smokeAudience is the audience of the throwaway issuer's tokens: not the production API's,
// so a smoke token is useless anywhere else.
const smokeAudience = "zmanim-smoke"

// smokeIssuer is a throwaway Clerk stand-in for the two smoke APIs: a fresh key of
// internal/jwtissuer's issuer, whose JWKS (and nothing else: no minting endpoint) is served
// on a loopback port while the smoke test runs.
type smokeIssuer struct {
	iss     *jwtissuer.Issuer
	jwksURL string
	srv     *http.Server
}

// startIssuer generates a key and serves its JWKS; stop closes the server.
func startIssuer() (s *smokeIssuer, stop func(), err error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("generate smoke signing key: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen for JWKS: %w", err)
	}
	base := "http://" + l.Addr().String()
	s = &smokeIssuer{iss: jwtissuer.New(k, base, smokeAudience), jwksURL: base + "/.well-known/jwks.json"}
	jwks, _ := json.Marshal(s.iss.JWKS())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, func() { _ = s.srv.Close() }, nil
}

// mint returns a token for an endpoint's auth ("user" or "admin") and subject.
func (s *smokeIssuer) mint(auth, sub string) (string, error) {
	kind := jwtissuer.KindUser
	if auth == "admin" {
		kind = jwtissuer.KindAdmin
	}
	tok, err := s.iss.Mint(kind, sub)
	if err != nil {
		return "", fmt.Errorf("sign smoke token: %w", err)
	}
	return tok, nil
}
