package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shtetl/zmanim-ops/internal/onbox"
)

// ErrVersionExists means the version was released before; versions are immutable.
var ErrVersionExists = errors.New("version already released")

// Pointer is the content of releases/current.
type Pointer struct {
	Version string    `json:"version"`
	Commit  string    `json:"commit"`
	Updated time.Time `json:"updated"`
	By      string    `json:"by"`
}

// ReadPointer reads releases/current; a missing pointer is a zero Pointer and no error.
func ReadPointer(ctx context.Context, st onbox.Store) (Pointer, error) {
	var p Pointer
	b, _, err := st.Get(ctx, CurrentKey)
	if errors.Is(err, onbox.ErrNotFound) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("parse s3://%s/%s: %w", st.Bucket(), CurrentKey, err)
	}
	return p, nil
}

// WritePointer moves releases/current.
func WritePointer(ctx context.Context, st onbox.Store, p Pointer) error {
	return writePointer(ctx, st, p, nil)
}

// writePointer moves releases/current; with a guard, only if the pointer is what the lock
// holder last saw (ErrFenced otherwise), and the guard then remembers the new ETag.
func writePointer(ctx context.Context, st onbox.Store, p Pointer, g *PointerGuard) error {
	b, _ := json.Marshal(p)
	c := onbox.Cond{}
	if g != nil {
		c = g.cond()
	}
	etag, err := st.Put(ctx, CurrentKey, b, c)
	if errors.Is(err, onbox.ErrPrecondition) {
		return fmt.Errorf("%w: s3://%s/%s; another release ran meanwhile, see `go tool mage release:history`", ErrFenced, st.Bucket(), CurrentKey)
	}
	if err != nil {
		return err
	}
	if g != nil {
		g.tag = etag
	}
	return nil
}

// CheckNew fails with ErrVersionExists when the version's manifest exists.
func CheckNew(ctx context.Context, st onbox.Store, version string) error {
	_, _, err := st.Get(ctx, onbox.ManifestKey(version))
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s is in s3://%s/%s; versions are immutable: commit and release again, or set ZOPS_VERSION to a new version (roll back to an old one with `go tool mage release:rollback %s`)", ErrVersionExists, version, st.Bucket(), onbox.ManifestKey(version), version)
	case errors.Is(err, onbox.ErrNotFound):
		return nil
	default:
		return err
	}
}

// Upload puts the binaries and then the manifest under releases/<version>/ with
// If-None-Match: * (never overwriting anything), downloads each object back to verify its
// sha256, and only then moves the releases/current pointer.
type Upload struct {
	Store    onbox.Store
	Manifest func() *onbox.Manifest
	Who      string
	Out      io.Writer

	// Box reports whether the box switched; nil means it did not (no deploy step). Once it
	// has switched, or may have, the pointer is never moved back.
	Box func() BoxState
	// Guard makes the pointer writes conditional on the pointer the lock holder saw; nil
	// writes unconditionally.
	Guard func() *PointerGuard
	guard *PointerGuard

	Previous Pointer // the pointer before it moved (filled by Run, used to restore it)
	moved    bool
}

func (u *Upload) String() string {
	return fmt.Sprintf("upload to s3://%s/releases/<version>/ (immutable) and move the current pointer", u.Store.Bucket())
}

// Run uploads and verifies.
func (u *Upload) Run(ctx context.Context) error {
	m := u.Manifest()
	if err := u.Store.Check(ctx); err != nil {
		return err
	}
	if err := CheckNew(ctx, u.Store, m.Version); err != nil {
		return err
	}
	for _, a := range m.Artifacts {
		body, err := os.ReadFile(a.Path)
		if err != nil {
			return err
		}
		if _, err := u.Store.Put(ctx, a.Key, body, onbox.Cond{IfAbsent: true}); err != nil {
			if !errors.Is(err, onbox.ErrPrecondition) {
				return err
			}
			// Left by an interrupted upload of this version (there is no manifest yet):
			// acceptable only if it is byte-identical, which the verification below checks.
		}
	}
	for _, a := range m.Artifacts {
		b, _, err := u.Store.Get(ctx, a.Key)
		if err != nil {
			return fmt.Errorf("verify upload: %w", err)
		}
		h := sha256.Sum256(b)
		if got := hex.EncodeToString(h[:]); got != a.SHA256 || int64(len(b)) != a.Size {
			return fmt.Errorf("verify upload: s3://%s/%s has sha256 %s (%d bytes), want %s (%d bytes); delete the partial upload of %s or release under a new version", u.Store.Bucket(), a.Key, got, len(b), a.SHA256, a.Size, m.Version)
		}
	}
	mb, _ := json.MarshalIndent(m, "", "  ")
	if _, err := u.Store.Put(ctx, onbox.ManifestKey(m.Version), mb, onbox.Cond{IfAbsent: true}); err != nil {
		if errors.Is(err, onbox.ErrPrecondition) {
			return fmt.Errorf("%w: %s was uploaded by someone else meanwhile", ErrVersionExists, m.Version)
		}
		return err
	}
	if u.Out != nil {
		fmt.Fprintf(u.Out, "  uploaded and verified %d binaries and the manifest\n", len(m.Artifacts))
	}
	prev, err := ReadPointer(ctx, u.Store)
	if err != nil {
		return err
	}
	u.Previous = prev
	if u.Guard != nil {
		u.guard = u.Guard()
	}
	if err := writePointer(ctx, u.Store, Pointer{Version: m.Version, Commit: m.Commit, Updated: time.Now().UTC(), By: u.Who}, u.guard); err != nil {
		return err
	}
	u.moved = true
	if u.Out != nil {
		fmt.Fprintf(u.Out, "  s3://%s/%s: %s -> %s\n", u.Store.Bucket(), CurrentKey, orNone(prev.Version), m.Version)
	}
	return nil
}

// Finish puts the pointer back when the release failed after it moved, unless the box
// switched (or may have): then the box is the truth and the pointer follows it.
func (u *Upload) Finish(ctx context.Context, runErr error) error {
	if runErr == nil || !u.moved {
		return nil
	}
	if u.Box != nil {
		if st := u.Box(); st != BoxUnchanged {
			if u.Out != nil {
				fmt.Fprintf(u.Out, "  s3://%s/%s stays at the new version: the box is %s (a later step failed: %s)\n", u.Store.Bucket(), CurrentKey, st, firstLine(runErr.Error()))
			}
			return nil
		}
	}
	if u.Previous.Version == "" {
		c := onbox.Cond{}
		if u.guard != nil {
			c = onbox.Cond{IfMatch: u.guard.tag}
		}
		if err := u.Store.Delete(ctx, CurrentKey, c); errors.Is(err, onbox.ErrPrecondition) {
			return fmt.Errorf("%w: left it alone", ErrFenced)
		} else {
			return err
		}
	}
	return writePointer(ctx, u.Store, u.Previous, u.guard)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
