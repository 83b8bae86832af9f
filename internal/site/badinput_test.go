package site

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/shtetl/zmanim-ops/internal/awsx"
)

func TestScanBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T) string
		want  error
		msg   string
	}{
		{"missing directory", func(t *testing.T) string { return filepath.Join(t.TempDir(), "out") }, ErrNoDir, "does not exist"},
		{"a file, not a directory", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "out")
			os.WriteFile(p, nil, 0o644)
			return p
		}, ErrNoDir, "is a file"},
		{"no index.html", func(t *testing.T) string { return writeTree(t, map[string]string{"about.html": "x"}) }, ErrNotExport, "output: 'export'"},
		{"empty directory", func(t *testing.T) string { return t.TempDir() }, ErrNotExport, "no index.html"},
		{"symlinked directory", func(t *testing.T) string {
			d := writeTree(t, map[string]string{"index.html": "x"})
			os.Symlink(t.TempDir(), filepath.Join(d, "linked"))
			return d
		}, ErrBadFile, "symlink to a directory"},
		{"broken symlink", func(t *testing.T) string {
			d := writeTree(t, map[string]string{"index.html": "x"})
			os.Symlink(filepath.Join(d, "nowhere"), filepath.Join(d, "dangling.js"))
			return d
		}, ErrBadFile, "broken symlink"},
		{"reserved manifest name", func(t *testing.T) string {
			return writeTree(t, map[string]string{"index.html": "x", ManifestKey: "{}"})
		}, ErrBadFile, "reserved"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Scan(context.Background(), tc.setup(t))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Scan error = %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestScanSymlinkedFileAndEmptyFile(t *testing.T) {
	t.Parallel()
	d := writeTree(t, map[string]string{"index.html": "home", "shared/logo.svg": "<svg/>", "empty.txt": ""})
	if err := os.Symlink("shared/logo.svg", filepath.Join(d, "logo.svg")); err != nil {
		t.Fatal(err)
	}
	files, err := Scan(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]LocalFile{}
	for _, f := range files {
		got[f.Key] = f
	}
	if got["logo.svg"].SHA256 != got["shared/logo.svg"].SHA256 || got["logo.svg"].Size != 6 {
		t.Fatalf("symlinked file not deployed with its target's content: %+v", got["logo.svg"])
	}
	if f, ok := got["empty.txt"]; !ok || f.Size != 0 {
		t.Fatalf("empty file: %+v", f)
	}
}

func TestSyncOddNames(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	st, c := newBucket(t, ep)
	files := map[string]string{
		"index.html":                     "home",
		"docs/my page/index.html":        "spaces",
		"docs/zmanim-זמנים/index.html":   "hebrew",
		"docs/ünïcödé.html":              "unicode",
		"a+b.html":                       "plus",
		"100%.html":                      "percent",
		"q?x=1&y=2#frag.txt":             "query-ish",
		"empty.txt":                      "",
		"_next/static/chunks/c (1).js":   "paren",
		"docs/deep/er/still/index.html":  "deep",
		"images/with space and+plus.png": "img",
	}
	dir := writeTree(t, files)
	ctx := context.Background()
	clk := newClock()
	sum, _, err := Sync(ctx, Options{Dir: dir, Store: st, Now: clk.Now, Out: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Uploaded != len(files) {
		t.Fatalf("uploaded %d of %d", sum.Uploaded, len(files))
	}
	for k, v := range files {
		got, out := getBody(t, c, st.Bucket(), k)
		if got != v {
			t.Errorf("%q: body %q, want %q", k, got, v)
		}
		if out.Metadata[MetaSHA256] == "" {
			t.Errorf("%q: no sha256 metadata", k)
		}
	}
	// Listing returns the same keys (no double encoding), so nothing is uploaded again.
	sum, _, err = Sync(ctx, Options{Dir: dir, Store: st, Now: clk.Now, Out: quiet()})
	if err != nil || sum.Uploaded != 0 || sum.Stale != 0 {
		t.Fatalf("second sync: %v, %+v", err, sum)
	}
}

func TestSyncFileReplacedByDirectory(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	st, c := newBucket(t, ep)
	ctx := context.Background()
	clk := newClock()
	// Deploy 1: "docs/guide" is a file (an extension-less page).
	d1 := writeTree(t, map[string]string{"index.html": "home", "docs/guide": "old guide", "api": "old api", "x.js": "x"})
	if _, _, err := Sync(ctx, Options{Dir: d1, Store: st, Now: clk.Now, Out: quiet()}); err != nil {
		t.Fatal(err)
	}
	// Deploy 2: it became a directory; and "api" the other way round is tested next.
	d2 := writeTree(t, map[string]string{"index.html": "home", "docs/guide/index.html": "new guide", "api": "old api", "x.js": "x"})
	sum, _, err := Sync(ctx, Options{Dir: d2, Store: st, Now: clk.Now, Out: quiet(), MaxDeleteShare: 1})
	if err != nil {
		t.Fatalf("file -> directory: %v", err)
	}
	if got, _ := getBody(t, c, st.Bucket(), "docs/guide/index.html"); got != "new guide" {
		t.Fatalf("new page %q", got)
	}
	t.Logf("file->dir: %s (conflicts removed %d)", sum, sum.Conflicts)
	// Deploy 3: directory "docs/guide/" becomes a file again.
	d3 := writeTree(t, map[string]string{"index.html": "home", "docs/guide": "file again", "api": "old api", "x.js": "x"})
	sum, _, err = Sync(ctx, Options{Dir: d3, Store: st, Now: clk.Now, Out: quiet(), MaxDeleteShare: 1})
	if err != nil {
		t.Fatalf("directory -> file: %v", err)
	}
	if got, _ := getBody(t, c, st.Bucket(), "docs/guide"); got != "file again" {
		t.Fatalf("page %q", got)
	}
	// Every key the manifest lists exists, and a further sync has nothing to do.
	sum, _, err = Sync(ctx, Options{Dir: d3, Store: st, Now: clk.Now, Out: quiet(), MaxDeleteShare: 1})
	if err != nil || sum.Uploaded != 0 {
		t.Fatalf("resync: %v %+v", err, sum)
	}
}

func TestSyncBucketMissingAndAccessDenied(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	dir := writeTree(t, map[string]string{"index.html": "home"})
	ctx := context.Background()
	missing := NewS3Store(awsx.NewS3(ep), "site-test-no-such-bucket", 4, nil)
	_, _, err := Sync(ctx, Options{Dir: dir, Store: missing, Out: quiet()})
	if !errors.Is(err, ErrNoBucket) {
		t.Fatalf("missing bucket: %v, want ErrNoBucket", err)
	}
	st, _ := newBucket(t, ep)
	bad := ep
	bad.SecretKey = "wrong-secret"
	denied := NewS3Store(awsx.NewS3(bad), st.Bucket(), 4, nil)
	_, _, err = Sync(ctx, Options{Dir: dir, Store: denied, Out: quiet()})
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("wrong secret: %v, want ErrAccessDenied", err)
	}
	t.Logf("messages:\n%v\n%v", errors.Unwrap(err), err)
}

func TestSyncMaxDeleteGuardAndGrace(t *testing.T) {
	t.Parallel()
	ep := s3env(t)
	st, c := newBucket(t, ep)
	ctx := context.Background()
	clk := newClock()
	full := map[string]string{"index.html": "home"}
	for i := range 9 {
		full[filepath.ToSlash(filepath.Join("docs", string(rune('a'+i)), "index.html"))] = "page"
	}
	d1 := writeTree(t, full)
	if _, _, err := Sync(ctx, Options{Dir: d1, Store: st, Now: clk.Now, Out: quiet()}); err != nil {
		t.Fatal(err)
	}
	// The wrong directory: only the home page. Refused before any write.
	d2 := writeTree(t, map[string]string{"index.html": "home v2"})
	puts := st.Requests().Get("PutObject")
	_, _, err := Sync(ctx, Options{Dir: d2, Store: st, Now: clk.Now, Out: quiet()})
	if !errors.Is(err, ErrTooManyDeletes) || !strings.Contains(err.Error(), "ZOPS_SITE_MAX_DELETE") {
		t.Fatalf("guard: %v", err)
	}
	if st.Requests().Get("PutObject") != puts {
		t.Fatal("a refused sync wrote to the bucket")
	}
	// Allowed: the pages become stale, stay for the grace period, then go.
	sum, _, err := Sync(ctx, Options{Dir: d2, Store: st, Now: clk.Now, Out: quiet(), MaxDeleteShare: 1, Grace: time.Hour})
	if err != nil || sum.Stale != 9 || sum.Deleted != 0 {
		t.Fatalf("allowed sync: %v %+v", err, sum)
	}
	clk.Advance(59 * time.Minute)
	sum, _, err = Sync(ctx, Options{Dir: d2, Store: st, Now: clk.Now, Out: quiet(), Grace: time.Hour})
	if err != nil || sum.Deleted != 0 {
		t.Fatalf("inside grace: %v %+v", err, sum)
	}
	if got, _ := getBody(t, c, st.Bucket(), "docs/a/index.html"); got != "page" {
		t.Fatal("stale page gone inside the grace period")
	}
	clk.Advance(2 * time.Minute)
	sum, _, err = Sync(ctx, Options{Dir: d2, Store: st, Now: clk.Now, Out: quiet(), Grace: time.Hour})
	if err != nil || sum.Deleted != 9 {
		t.Fatalf("after grace: %v %+v", err, sum)
	}
	keys := bucketKeys(t, st)
	if strings.Join(keys, ",") != "index.html,"+ManifestKey && strings.Join(keys, ",") != ManifestKey+",index.html" {
		t.Fatalf("bucket holds %v", keys)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(st.Bucket()), Key: aws.String("docs/a/index.html")}); err == nil {
		t.Fatal("expired page still there")
	}
}
