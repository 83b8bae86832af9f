package site

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// The manifest is what makes a sync cheap: one GET gives the content hash, size, ETag and
// headers of every key, which a LIST (ETags and sizes only, no user metadata) cannot. It is
// written after every page is uploaded and read before anything else; each entry is verified
// against the listing, so a stale or tampered manifest costs uploads, never a wrong skip.
const (
	// manifestDir is where the deploy's own records live; the edge never serves it.
	manifestDir = config.SitePrivateDir
	// ManifestKey is the object holding the deploy manifest.
	ManifestKey     = manifestDir + "/site-manifest.json"
	manifestVersion = 1
	// MetaSHA256 is the user metadata key holding each object's content hash, so that a lost
	// manifest can be rebuilt from HEAD requests.
	MetaSHA256 = "sha256"
)

// Manifest describes what a bucket holds.
type Manifest struct {
	Version int              `json:"version"`
	Deploy  string           `json:"deploy"`  // id of the deploy that wrote it
	Updated time.Time        `json:"updated"` // when it was written
	Objects map[string]Entry `json:"objects"`
}

// Entry is one object of the bucket.
type Entry struct {
	SHA256       string `json:"sha256"`
	Size         int64  `json:"size"`
	ETag         string `json:"etag"`
	ContentType  string `json:"type,omitempty"`
	CacheControl string `json:"cache,omitempty"`
	// StaleSince is when the object stopped being part of the site; it is deleted once it has
	// been stale for the grace period, so pages opened before then keep loading it.
	StaleSince *time.Time `json:"stale_since,omitempty"`
}

func decodeManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode manifest %s: %w", ManifestKey, err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("decode manifest %s: version %d, this toolkit reads %d", ManifestKey, m.Version, manifestVersion)
	}
	if m.Objects == nil {
		m.Objects = map[string]Entry{}
	}
	return &m, nil
}

func (m *Manifest) encode() ([]byte, error) {
	// Sorted keys keep the manifest diffable; json.Marshal sorts map keys already.
	return json.MarshalIndent(m, "", " ")
}

// Keys returns the object keys in order.
func (m *Manifest) Keys() []string {
	keys := make([]string, 0, len(m.Objects))
	for k := range m.Objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
