package testfix

import (
	"context"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/jwtissuer"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// Token returns a bearer token of kind (jwtissuer.KindUser, KindAdmin, KindExpired) for sub,
// minted by the twin's Clerk stand-in; an empty sub lets the issuer choose one.
func Token(t testing.TB, kind, sub string) string {
	t.Helper()
	return TokenFor(t, kind, sub, "")
}

// TokenFor is Token with another audience ("" for the issuer's), to test that it is checked.
func TokenFor(t testing.TB, kind, sub, audience string) string {
	t.Helper()
	base := testenv.Require(t, testenv.JWTIssuerURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := jwtissuer.MintRemoteFor(ctx, base, kind, sub, audience)
	if err != nil {
		t.Fatalf("mint a %s token: %v", kind, err)
	}
	return tok
}
