package fresh

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	out := `$ go tool mage release
release: ok
@@fresh 0 exit=0 seconds=412.5
$ go tool mage test
=== RUN   TestA
--- FAIL: TestBrowserAcrossDeploy (1.00s)
    --- FAIL: TestBrowserAcrossDeploy/sub (0.50s)
FAIL
FAIL	github.com/shtetl/zmanim-ops/internal/site	12.3s
ok  	github.com/shtetl/zmanim-ops/internal/deps	0.2s
# github.com/shtetl/zmanim-ops/internal/x
FAIL	github.com/shtetl/zmanim-ops/internal/x [build failed]
--- FAIL: TestTwinRelease (3.00s)
FAIL	github.com/shtetl/zmanim-ops/internal/release	40.0s
@@fresh 1 exit=1 seconds=600
`
	res := parse(strings.NewReader(out), io.Discard)
	want := []string{"github.com/shtetl/zmanim-ops/internal/site.TestBrowserAcrossDeploy", "github.com/shtetl/zmanim-ops/internal/release.TestTwinRelease", "github.com/shtetl/zmanim-ops/internal/x"}
	if strings.Join(res.FailedTests, ",") != strings.Join(want, ",") {
		t.Errorf("failed = %q, want %q", res.FailedTests, want)
	}
	if res.ReleaseSeconds != 412.5 || res.ReleaseExit != 0 || res.TestExit != 1 || res.TestSeconds != 600 || !res.TestRan {
		t.Errorf("result %+v", res)
	}
	if got := res.Line(); got != "fresh: release_s=412 test_s=600 failed_tests=3 release_exit=0 test_exit=1" {
		t.Errorf("line %q", got)
	}
	quick := parse(strings.NewReader("@@fresh 0 exit=1 seconds=30\n"), io.Discard)
	if got := quick.Line(); got != "fresh: release_s=30 test_s=skipped failed_tests=- release_exit=1 test_exit=0" {
		t.Errorf("quick line %q", got)
	}
}

func TestEnterArgv(t *testing.T) {
	t.Parallel()
	argv := enterArgv("/r", Commands, []string{"SSL_CERT_FILE=/x"})
	if argv[0] != "unshare" || argv[len(argv)-3] != "/r" || argv[len(argv)-1] != "SSL_CERT_FILE=/x" {
		t.Fatalf("argv %q", argv)
	}
	inner := argv[len(argv)-2]
	for _, c := range Commands {
		if !strings.Contains(inner, "; "+c+"; rc=$?") {
			t.Errorf("script lacks %q exactly:\n%s", c, inner)
		}
	}
}

func TestStamped(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &stamper{&b, start, func() time.Time { return start.Add(75 * time.Second) }}
	fmt.Fprintln(w, "twin: up")
	if b.String() != "[01:15] twin: up\n" {
		t.Errorf("got %q", b.String())
	}
}
