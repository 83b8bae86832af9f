package testfix

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/jwtissuer"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

// recTB records how a fixture stopped the test instead of stopping this one.
type recTB struct {
	testing.TB
	fatal, skip string
}

func (r *recTB) Helper() {}
func (r *recTB) Fatalf(f string, a ...any) {
	r.fatal = fmt.Sprintf(f, a...)
	runtime.Goexit()
}
func (r *recTB) Skipf(f string, a ...any) {
	r.skip = fmt.Sprintf(f, a...)
	runtime.Goexit()
}

// TestMissingComponentFailsWhenRequired: without the twin a fixture skips the test on a
// developer's machine, and fails it when ZOPS_REQUIRE_INTEGRATION=1 (CI, `mage test`).
func TestMissingComponentFailsWhenRequired(t *testing.T) {
	fixtures := []struct {
		env string
		use func(testing.TB)
	}{
		{testenv.PostgresURL, func(tb testing.TB) { RequirePG(tb) }},
		{testenv.S3Endpoint, func(tb testing.TB) { RequireS3(tb) }},
		{testenv.JWTIssuerURL, func(tb testing.TB) { Token(tb, jwtissuer.KindUser, "") }},
	}
	for _, required := range []string{"1", ""} {
		t.Setenv("ZOPS_REQUIRE_INTEGRATION", required)
		for _, f := range fixtures {
			t.Setenv(f.env, "")
			r := &recTB{TB: t}
			done := make(chan struct{})
			go func() { defer close(done); f.use(r) }()
			<-done
			switch {
			case required == "1" && (r.fatal == "" || !strings.Contains(r.fatal, f.env)):
				t.Errorf("%s unset, integration required: fatal %q, skip %q; want a failure naming it", f.env, r.fatal, r.skip)
			case required == "" && r.skip == "":
				t.Errorf("%s unset, integration not required: fatal %q; want a skip", f.env, r.fatal)
			}
		}
	}
}
