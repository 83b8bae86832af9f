//go:generate go tool packer-sdc mapstructure-to-hcl2 -type Config

// Package local is the zops-local builder: it debootstraps a Debian root of the host's
// architecture (cached by suite, mirror, variant and package list, so a warm rebuild only
// copies it), mounts proc, sys, dev and a private dev/shm, provisions it through the SDK's
// chroot communicator with a policy-rc.d that keeps packages from starting services, unmounts
// everything and hands back the root directory as the artifact. It is the local stand-in for
// the EC2 image: the same template, provisioners and recipe run against both.
package local

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// Config is the zops-local source block.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Directory the finished root is written to. It must not exist yet (a leftover from an
	// earlier build is refused rather than overwritten) unless `force` is set.
	OutputDir string `mapstructure:"output_dir" required:"true"`
	// Debian suite to debootstrap. Defaults to `bookworm`.
	Suite string `mapstructure:"suite"`
	// Debian mirror. Defaults to `http://deb.debian.org/debian`.
	Mirror string `mapstructure:"mirror"`
	// debootstrap variant. Defaults to `minbase`.
	Variant string `mapstructure:"variant"`
	// Extra packages debootstrap installs (its --include list); part of the cache key.
	Include []string `mapstructure:"include"`
	// Where debootstrapped bases are cached, one directory per key. Defaults to
	// $ZOPS_CACHE_DIR/debootstrap, else the user cache dir's zmanim-ops/debootstrap.
	CacheDir string `mapstructure:"cache_dir"`
	// Remove an existing output_dir before building instead of refusing.
	Force bool `mapstructure:"force"`

	ctx interpolate.Context
}

// Prepare decodes and validates the configuration, listing every problem at once.
func (c *Config) Prepare(raws ...interface{}) ([]string, error) {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         BuilderID,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
	}, raws...)
	if err != nil {
		return nil, err
	}
	if c.Suite == "" {
		c.Suite = "bookworm"
	}
	if c.Mirror == "" {
		c.Mirror = "http://deb.debian.org/debian"
	}
	if c.Variant == "" {
		c.Variant = "minbase"
	}
	if c.CacheDir == "" {
		c.CacheDir = filepath.Join(defaultCacheDir(), "debootstrap")
	}
	var errs *packersdk.MultiError
	if c.OutputDir == "" {
		errs = packersdk.MultiErrorAppend(errs, errors.New("output_dir is required: the directory the built root is written to"))
	} else if abs, err := filepath.Abs(c.OutputDir); err != nil {
		errs = packersdk.MultiErrorAppend(errs, fmt.Errorf("output_dir %q: %w", c.OutputDir, err))
	} else {
		c.OutputDir = abs
		if abs == "/" || filepath.Dir(abs) == "/" {
			errs = packersdk.MultiErrorAppend(errs, fmt.Errorf("output_dir %q is too close to / to be removed on failure; pick a directory of its own", abs))
		}
	}
	for _, p := range c.Include {
		if p == "" || strings.ContainsAny(p, ", \t") {
			errs = packersdk.MultiErrorAppend(errs, fmt.Errorf("include: %q is not a package name", p))
		}
	}
	if errs != nil && len(errs.Errors) > 0 {
		return nil, errs
	}
	return nil, nil
}

// CacheKey identifies a debootstrapped base: the same key means the same base root.
func (c *Config) CacheKey(arch string) string {
	inc := append([]string(nil), c.Include...)
	sort.Strings(inc)
	h := sha256.New()
	fmt.Fprintf(h, "suite=%s\nmirror=%s\nvariant=%s\narch=%s\ninclude=%s\n", c.Suite, c.Mirror, c.Variant, arch, strings.Join(inc, ","))
	return fmt.Sprintf("%s-%s-%x", c.Suite, arch, h.Sum(nil)[:8])
}

func defaultCacheDir() string {
	if d := os.Getenv("ZOPS_CACHE_DIR"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "zmanim-ops")
}
