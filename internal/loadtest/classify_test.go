package loadtest

import (
	"bufio"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClassifyRecordedHeaderSets classifies every header set in testdata/headers against the
// expectation on its first line.
func TestClassifyRecordedHeaderSets(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/headers/*.txt")
	if err != nil || len(files) < 10 {
		t.Fatalf("header sets: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, rest, _ := strings.Cut(string(b), "\n")
			want := map[string]string{}
			for _, kv := range strings.Fields(strings.TrimPrefix(first, "#")) {
				k, v, _ := strings.Cut(kv, "=")
				want[k] = v
			}
			mh, err := textproto.NewReader(bufio.NewReader(strings.NewReader(rest + "\n"))).ReadMIMEHeader()
			if err != nil {
				t.Fatalf("parse headers: %v", err)
			}
			kind := map[string]Kind{"api": KindAPI, "private": KindPrivate, "frontend": KindFrontend}[want["kind"]]
			c := Classify(kind, http.Header(mh))
			got := map[string]string{
				"class": c.Class.String(), "tier": c.Tier.String(),
				"hit": boolStr(c.Hit), "leak": boolStr(c.Leak),
			}
			for k, g := range got {
				if want[k] != g {
					t.Errorf("%s = %s, want %s", k, g, want[k])
				}
			}
			if p := http.Header(mh).Get("X-Amz-Cf-Pop"); p != c.Pop {
				t.Errorf("pop = %q, want %q", c.Pop, p)
			}
		})
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestParseClassRoundTrip(t *testing.T) {
	t.Parallel()
	for c := Class(0); c < numClasses; c++ {
		if got, ok := ParseClass(c.String()); !ok || got != c {
			t.Errorf("ParseClass(%q) = %v, %v", c.String(), got, ok)
		}
	}
	if _, ok := ParseClass("hit"); ok {
		t.Error("ParseClass accepted an unknown class")
	}
}

func BenchmarkClassify(b *testing.B) {
	h := http.Header{"X-Cache": {"Miss from cloudfront"}, "Age": {"12"}, "X-Amz-Cf-Pop": {"IAD89-C1"}}
	for b.Loop() {
		Classify(KindAPI, h)
	}
}
