package jwtissuer

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestMintedTokensVerifyAgainstTheJWKS(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key.pem")
	iss, err := Load(key, "http://127.0.0.1:1", "zmanim-api")
	if err != nil {
		t.Fatal(err)
	}
	again, err := Load(key, "http://127.0.0.1:1", "zmanim-api")
	if err != nil || again.kid != iss.kid {
		t.Fatalf("the key is not kept across loads: %v", err)
	}
	pub := &iss.key.PublicKey
	parse := func(tok string) (*jwt.Token, error) {
		return jwt.Parse(tok, func(*jwt.Token) (any, error) { return pub, nil },
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(iss.URL), jwt.WithAudience("zmanim-api"))
	}
	cases := []struct {
		kind, aud string
		ok        bool
		scope     string
	}{
		{KindUser, "zmanim-api", true, "publisher"},
		{KindAdmin, "zmanim-api", true, "publisher admin"},
		{KindExpired, "zmanim-api", false, ""},
		{KindUser, "someone-else", false, ""},
	}
	for _, c := range cases {
		tok, err := iss.MintFor(c.kind, "user_x", c.aud)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := parse(tok)
		if (err == nil) != c.ok {
			t.Errorf("%s/%s: verify err = %v, want ok=%v", c.kind, c.aud, err, c.ok)
			continue
		}
		if c.ok && pt.Claims.(jwt.MapClaims)["scope"] != c.scope {
			t.Errorf("%s: scope = %v", c.kind, pt.Claims.(jwt.MapClaims)["scope"])
		}
	}
	if _, err := iss.Mint("root", "x"); err == nil {
		t.Error("unknown kind accepted")
	}
	// Another key's signature does not verify.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	forged, _ := New(other, iss.URL, "zmanim-api").Mint(KindUser, "mallory")
	if _, err := parse(forged); err == nil {
		t.Error("forged token verified")
	}
}

func TestHandler(t *testing.T) {
	iss, err := Load(filepath.Join(t.TempDir(), "key.pem"), "http://127.0.0.1:1", "zmanim-api")
	if err != nil {
		t.Fatal(err)
	}
	iss.now = func() time.Time { return time.Unix(1_800_000_000, 0) }
	srv := httptest.NewServer(iss.Handler())
	defer srv.Close()
	for path, want := range map[string]int{"/.well-known/jwks.json": 200, "/.well-known/openid-configuration": 200} {
		resp, err := http.Get(srv.URL + path)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("GET %s: %v %v", path, err, resp.Status)
		}
		resp.Body.Close()
	}
	resp, err := http.Post(srv.URL+"/mint?kind=nope", "", nil)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("bad kind: %v %v", err, resp.Status)
	}
	resp.Body.Close()
}

func TestMintRemote(t *testing.T) {
	iss, err := Load(filepath.Join(t.TempDir(), "key.pem"), "http://127.0.0.1:1", "zmanim-api")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.Handler())
	defer srv.Close()
	tok, err := MintRemote(context.Background(), srv.URL, KindAdmin, "user_admin")
	if err != nil {
		t.Fatal(err)
	}
	c := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, c, func(*jwt.Token) (any, error) { return &iss.key.PublicKey, nil }); err != nil || c["sub"] != "user_admin" || c["scope"] != "publisher admin" {
		t.Fatalf("token %v %v", c, err)
	}
	if _, err := MintRemote(context.Background(), srv.URL, "root", ""); err == nil || !strings.Contains(err.Error(), "unknown token kind") {
		t.Fatalf("bad kind: %v", err)
	}
}
