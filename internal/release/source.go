package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/shtetl/zmanim-ops/internal/tools"
)

// APISource says where the API binary is built from. The zero value is the reference
// workload in this repository (config release.package under the repository root); the real
// Shtetl Zmanim API lives in its own repository and is released by pointing Location at a
// checkout of it or at its git URL.
//
// Whatever the source, the binary must keep the box's contract, which the smoke test and the
// deploy's health gate check: `<binary> --version` prints "... <version> ...", `<binary>
// serve` serves on the socket systemd passes (LISTEN_FDS) and GET /health answers 200 with
// {"version": "<version>"}; the version, commit and date arrive through -X main.version,
// main.commit and main.date.
type APISource struct {
	// Location is "" (this repository), a local directory (a git checkout of the API), or a
	// git URL (https://, ssh://, git@host:path, file://) fetched into the cache.
	Location string
	// Ref is the branch, tag or commit of a git URL (default HEAD, the remote's default
	// branch). Ignored for a directory, which is built as it is checked out.
	Ref string
	// Package is the Go package of the API inside the source, e.g. ./cmd/api (default: config
	// release.package).
	Package string
	// CacheDir holds the fetched clones (default <tool cache>/src).
	CacheDir string
}

// ErrBadSource reports an API source that cannot be used.
var ErrBadSource = errors.New("bad API source")

// IsGitURL reports whether Location is fetched with git rather than used as a directory.
func (s APISource) IsGitURL() bool {
	l := s.Location
	if strings.Contains(l, "://") {
		return true
	}
	// scp-like syntax: user@host:path (but not a Windows-style or relative path with a colon).
	at, colon := strings.Index(l, "@"), strings.Index(l, ":")
	return at > 0 && colon > at && !strings.Contains(l[:colon], "/")
}

// String names the source for the plan and the report.
func (s APISource) String() string {
	switch {
	case s.Location == "":
		return "this repository"
	case s.IsGitURL():
		ref := s.Ref
		if ref == "" {
			ref = "HEAD"
		}
		return redactURL(s.Location) + " @ " + ref
	}
	return s.Location
}

// redactURL drops a password or token from an https URL so it never reaches a log.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if at := strings.Index(rest, "@"); at >= 0 && at < strings.IndexAny(rest+"/", "/") {
		return scheme + "://xxxxx@" + rest[at+1:]
	}
	return u
}

// Resolve returns the directory to build from: root for the default, the checkout for a
// directory (which must be a git work tree: the release version and build date come from its
// commit), or the cache clone of a git URL after fetching Ref into it.
func (s APISource) Resolve(ctx context.Context, root string, out io.Writer) (string, error) {
	switch {
	case s.Location == "":
		return root, nil
	case s.IsGitURL():
		return s.fetch(ctx, out)
	}
	dir, err := filepath.Abs(s.Location)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrBadSource, s.Location, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%w: ZOPS_API_SOURCE=%s is not a directory (give a checkout of the API or its git URL)", ErrBadSource, s.Location)
	}
	if _, err := gitIn(ctx, dir, "rev-parse", "--is-inside-work-tree"); err != nil {
		return "", fmt.Errorf("%w: ZOPS_API_SOURCE=%s is not a git checkout (a release is versioned by its commit): %w", ErrBadSource, s.Location, err)
	}
	if s.Ref != "" {
		return "", fmt.Errorf("%w: ZOPS_API_REF=%s is only for a git URL; check out the ref in %s instead, or give its URL", ErrBadSource, s.Ref, s.Location)
	}
	return dir, nil
}

// fetch brings Ref of the git URL into a clone in the cache (one per URL, reused: later
// releases fetch only what is new) and checks it out detached, cleaning anything a build left.
func (s APISource) fetch(ctx context.Context, out io.Writer) (string, error) {
	cache := s.CacheDir
	if cache == "" {
		cache = filepath.Join(tools.CacheDir(), "src")
	}
	h := sha256.Sum256([]byte(s.Location))
	dir := filepath.Join(cache, hex.EncodeToString(h[:8]))
	ref := s.Ref
	if ref == "" {
		ref = "HEAD"
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("API source cache: %w", err)
		}
		if _, err := gitIn(ctx, dir, "init", "--quiet"); err != nil {
			return "", err
		}
		if _, err := gitIn(ctx, dir, "remote", "add", "origin", s.Location); err != nil {
			return "", err
		}
	} else if _, err := gitIn(ctx, dir, "remote", "set-url", "origin", s.Location); err != nil {
		return "", err
	}
	if out != nil {
		fmt.Fprintf(out, "fetch API source %s into %s\n", s, dir)
	}
	// Tags come along so `git describe` can name the version; --force lets moved tags follow.
	if _, err := gitIn(ctx, dir, "fetch", "--quiet", "--force", "--tags", "origin", ref); err != nil {
		return "", fmt.Errorf("%w: fetch %s from %s (check the URL, the ref and access to the repository): %w", ErrBadSource, ref, redactURL(s.Location), err)
	}
	if _, err := gitIn(ctx, dir, "checkout", "--quiet", "--force", "--detach", "FETCH_HEAD"); err != nil {
		return "", err
	}
	if _, err := gitIn(ctx, dir, "clean", "--quiet", "-ffdx"); err != nil {
		return "", err
	}
	return dir, nil
}

func gitIn(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	// Never prompt for credentials: a release runs unattended.
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	b, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("git %s: %w", args[0], err)
	}
	return strings.TrimSpace(string(b)), nil
}
