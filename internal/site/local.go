package site

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// Errors about the directory to deploy.
var (
	ErrNoDir     = errors.New("export directory not found")
	ErrNotExport = errors.New("not a Next.js static export")
	ErrBadFile   = errors.New("file cannot be deployed")
)

// LocalFile is one file of the export.
type LocalFile struct {
	Key    string // S3 key: the path relative to the export root, with "/" separators
	Path   string // path on disk (through symlinks)
	Size   int64
	SHA256 string // hex
}

// Scan walks dir and hashes every file. Symlinks to regular files inside the export are
// deployed with the target's content (a build may link shared assets). A link that resolves
// outside the export root is refused: the site is public, and a link such as
// leak.txt -> /proc/self/environ would publish the runner's AWS session. Symlinked
// directories (they can loop) and special files are refused too. The root must hold index.html.
func Scan(ctx context.Context, dir string) ([]LocalFile, error) {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist; build the site first (next build with output: 'export' writes ./out) and pass that directory", ErrNoDir, dir)
		}
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is a file, not a directory; pass the export directory (usually ./out)", ErrNoDir, dir)
	}
	if fi, err := os.Stat(filepath.Join(dir, "index.html")); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s has no index.html at its root; set output: 'export' in next.config.js, run next build and pass its output directory (usually ./out)", ErrNotExport, dir)
	}
	// Links are judged against the resolved root, so an export reached through a link
	// (out -> build/out) works and "inside" means inside the real directory.
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", dir, err)
	}
	var files []LocalFile
	var problems []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("scan %s: %w", p, err)
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		real := p
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: broken symlink (%v); remove it or point it at a file", key, err))
				return nil
			}
			// Read the resolved path from here on, so a link swapped after the scan cannot
			// redirect the upload.
			real = target
			fi, err := os.Stat(target)
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("%s: broken symlink (%v); remove it or point it at a file", key, err))
				return nil
			case fi.IsDir():
				problems = append(problems, fmt.Sprintf("%s: symlink to a directory is not followed; copy the directory into the export instead", key))
				return nil
			case !within(root, target):
				problems = append(problems, fmt.Sprintf("%s: symlink resolves to %s, outside the export; the site is public, so copy the file into the export if it is meant to be published, else remove the link", key, target))
				return nil
			case !fi.Mode().IsRegular():
				problems = append(problems, fmt.Sprintf("%s: symlink to a non-regular file", key))
				return nil
			}
		} else if !d.Type().IsRegular() {
			problems = append(problems, fmt.Sprintf("%s: not a regular file (%s)", key, d.Type()))
			return nil
		}
		if msg := checkKey(key); msg != "" {
			problems = append(problems, key+": "+msg)
			return nil
		}
		files = append(files, LocalFile{Key: key, Path: real})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w:\n  - %s", ErrBadFile, strings.Join(problems, "\n  - "))
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Key < files[j].Key })
	if err := hashAll(ctx, files); err != nil {
		return nil, err
	}
	return files, nil
}

// within reports whether path (already resolved) is root or below it.
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func checkKey(key string) string {
	switch {
	case !utf8.ValidString(key):
		return "name is not valid UTF-8; rename it"
	case len(key) > 1024:
		return "name longer than S3's 1024-byte key limit"
	case key == ManifestKey || strings.HasPrefix(key, manifestDir+"/"):
		return "name is reserved for the deploy manifest"
	case strings.ContainsAny(key, "\x00\r\n"):
		return "name holds a control character"
	}
	return ""
}

// hashAll fills Size and SHA256, one worker per CPU (hashing is CPU-bound).
func hashAll(ctx context.Context, files []LocalFile) error {
	work := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range max(2, runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for i := range work {
				if err := hashFile(&files[i], buf); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	var err error
feed:
	for i := range files {
		select {
		case work <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

func hashFile(f *LocalFile, buf []byte) error {
	r, err := os.Open(f.Path)
	if err != nil {
		return fmt.Errorf("hash %s: %w", f.Key, err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, buf)
	if err != nil {
		return fmt.Errorf("hash %s: %w", f.Key, err)
	}
	f.Size = n
	f.SHA256 = hex.EncodeToString(h.Sum(nil))
	return nil
}
