package local

import (
	"strings"
	"testing"
)

func TestConfigPrepare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     map[string]interface{}
		wantErr string
	}{
		{"defaults", map[string]interface{}{"output_dir": "/tmp/zops-test/root"}, ""},
		{"no output_dir", map[string]interface{}{}, "output_dir is required"},
		{"output_dir too close to /", map[string]interface{}{"output_dir": "/tmp"}, "too close to /"},
		{"bad include", map[string]interface{}{"output_dir": "/tmp/x/root", "include": []string{"a,b"}}, `"a,b" is not a package name`},
		{"every problem at once", map[string]interface{}{"include": []string{""}}, "output_dir is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			_, err := c.Prepare(tt.raw)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Suite != "bookworm" || c.Mirror != "http://deb.debian.org/debian" || c.Variant != "minbase" || c.CacheDir == "" {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestCacheKey(t *testing.T) {
	t.Parallel()
	a := Config{Suite: "bookworm", Mirror: "m", Variant: "minbase", Include: []string{"systemd", "dbus"}}
	b := a
	b.Include = []string{"dbus", "systemd"}
	if a.CacheKey("amd64") != b.CacheKey("amd64") {
		t.Error("include order changed the key")
	}
	c := a
	c.Mirror = "other"
	d := a
	d.Include = []string{"systemd"}
	for _, o := range []Config{c, d} {
		if o.CacheKey("amd64") == a.CacheKey("amd64") {
			t.Errorf("different config %+v, same key", o)
		}
	}
	if a.CacheKey("amd64") == a.CacheKey("arm64") {
		t.Error("arch not in the key")
	}
}
