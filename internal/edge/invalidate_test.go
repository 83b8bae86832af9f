package edge

import (
	"bytes"
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParsePaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"/index.html,/docs/*", []string{"/index.html", "/docs/*"}, ""},
		{"/a /b\t/a", []string{"/a", "/b"}, ""},
		{"docs/*", []string{"/docs/*"}, ""},
		{"/*", []string{"/*"}, ""},
		{" , ", nil, "no paths"},
		{"/docs/*/x", nil, "may only be the last"},
	}
	for _, tc := range tests {
		got, err := ParsePaths(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePaths(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParsePaths(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestInvalidateTarget runs the mage target's code against an edge's control handler, the
// way `go tool mage edge:invalidate` reaches the twin.
func TestInvalidateTarget(t *testing.T) {
	f := newFixture(t)
	ctl := httptest.NewServer(f.edge.ControlHandler())
	t.Cleanup(ctl.Close)
	t.Setenv("ZOPS_EDGE_CONTROL_URL", ctl.URL)
	t.Setenv("ZOPS_ENV", "local")
	t.Setenv("ZOPS_CONFIG", "")
	f.get(t, "/api/cities?q=jer")
	if r := f.get(t, "/api/cities?q=jer"); r.Header.Get("X-Cache") != "Hit from cloudfront" {
		t.Fatalf("warm: %s", r.Header.Get("X-Cache"))
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := InvalidateTarget(ctx, "/api/*", &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), ": Completed in ") {
		t.Fatalf("output %q", out.String())
	}
	if r := f.get(t, "/api/cities?q=jer"); r.Header.Get("X-Cache") != "Miss from cloudfront" || r.Header.Get(TierHeader) != TierOrigin {
		t.Fatalf("after invalidation: %s from %s", r.Header.Get("X-Cache"), r.Header.Get(TierHeader))
	}
}
