// Package packercli is the typed wrapper for the packer CLI (core pinned to v1.9.4, the MPL
// line, in tools/packer) with the project's own plugin (packer/, built into the tool cache
// keyed by its source hash and handed to packer through PACKER_PLUGIN_PATH).
//
// It runs `packer validate` and `packer build -machine-readable`, parses the machine-readable
// stream for the artifacts and the per-build errors, and turns a failed build into a
// *BuildError carrying the failing provisioner's last output lines.
//
// From Go, a local box build is:
//
//	root, err := packercli.Build(ctx, packercli.BuildOptions{
//		Template: "packer/box.pkr.hcl",
//		Only:     "zops-local.box",
//		Vars:     map[string]string{"files_dir": staging, "output_dir": dir},
//	})
package packercli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/tools"
)

// Packer runs one packer binary with one plugin directory.
type Packer struct {
	Bin       string // packer executable
	PluginDir string // directory holding packer-plugin-zops
	// Env is added to the environment of every run (after the process's own).
	Env []string
}

// New returns a Packer with the pinned core and the project's plugin, building either into
// the tool cache first if needed.
func New(ctx context.Context) (*Packer, error) {
	bin, err := tools.Ensure(ctx, "packer")
	if err != nil {
		return nil, err
	}
	dir, err := EnsurePlugin(ctx)
	if err != nil {
		return nil, err
	}
	return &Packer{Bin: bin, PluginDir: dir}, nil
}

// BuildOptions says what `packer build` builds.
type BuildOptions struct {
	Template string            // a .pkr.hcl file or a directory of them
	Only     string            // build name(s), comma-separated, e.g. "zops-local.box"
	Vars     map[string]string // -var name=value
	// Progress receives packer's human-readable progress lines (nil: discarded).
	Progress io.Writer
}

// Artifact is one artifact a build reported.
type Artifact struct {
	Build     string // e.g. zops-local.box
	BuilderID string // e.g. zops.local
	ID        string // zops-local: the root directory; zops-ec2: region:ami-id
	String    string
	Files     []string
}

// Result lists the artifacts of a successful build, in the order packer reported them.
type Result struct {
	Artifacts []Artifact
}

// Build runs `packer build` with a Packer from New and returns the id of the single artifact
// (for zops-local.box, the root directory).
func Build(ctx context.Context, opts BuildOptions) (string, error) {
	p, err := New(ctx)
	if err != nil {
		return "", err
	}
	res, err := p.Build(ctx, opts)
	if err != nil {
		return "", err
	}
	if len(res.Artifacts) != 1 {
		return "", fmt.Errorf("packer build %s: %w: want exactly one artifact, got %d (set Only)", opts.Template, ErrBadOutput, len(res.Artifacts))
	}
	return res.Artifacts[0].ID, nil
}

// Validate runs `packer validate` on a template with the given variables.
func Validate(ctx context.Context, template, only string, vars map[string]string) error {
	p, err := New(ctx)
	if err != nil {
		return err
	}
	return p.Validate(ctx, template, only, vars)
}

// Validate runs `packer validate`; a rejected template is a *ValidateError.
func (p *Packer) Validate(ctx context.Context, template, only string, vars map[string]string) error {
	args := append([]string{"validate"}, commonArgs(only, vars)...)
	args = append(args, template)
	var out bytes.Buffer
	cmd := p.command(ctx, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &ValidateError{Template: template, Output: strings.TrimSpace(out.String())}
		}
		return fmt.Errorf("packer validate %s: %w", template, err)
	}
	return nil
}

// Build runs `packer build -machine-readable` and returns the artifacts; a failed build is a
// *BuildError (errors.Is(err, ErrBuildFailed)).
func (p *Packer) Build(ctx context.Context, opts BuildOptions) (*Result, error) {
	args := append([]string{"build", "-machine-readable", "-color=false"}, commonArgs(opts.Only, opts.Vars)...)
	args = append(args, opts.Template)
	cmd := p.command(ctx, args...)
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = pw, &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("packer build %s: %w", opts.Template, err)
	}
	var (
		wg     sync.WaitGroup
		parsed *parseResult
		perr   error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		parsed, perr = parse(pr, opts.Progress)
		io.Copy(io.Discard, pr)
	}()
	werr := cmd.Wait()
	pw.Close()
	wg.Wait()
	if perr != nil {
		return nil, fmt.Errorf("packer build %s: %w: %v", opts.Template, ErrBadOutput, perr)
	}
	if len(parsed.errors) > 0 || werr != nil {
		return nil, parsed.buildError(opts.Template, werr, stderr.String())
	}
	return &Result{Artifacts: parsed.artifacts()}, nil
}

func commonArgs(only string, vars map[string]string) []string {
	var args []string
	if only != "" {
		args = append(args, "-only="+only)
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		args = append(args, "-var", k+"="+vars[k])
	}
	return args
}

func (p *Packer) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p.Bin, args...)
	env := append(os.Environ(),
		// No calls home to HashiCorp's checkpoint service.
		"CHECKPOINT_DISABLE=1",
		"PACKER_PLUGIN_PATH="+p.PluginDir,
		"PACKER_NO_COLOR=1",
	)
	cmd.Env = append(env, p.Env...)
	// Packer forwards an interrupt to its plugins, which then run their cleanups: give it
	// the chance instead of killing it outright when ctx ends.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	// After the interrupt, packer gets time to run the cleanups (unmount, terminate) before a kill.
	cmd.WaitDelay = 5 * time.Minute
	return cmd
}

// parseResult is what a machine-readable stream said.
type parseResult struct {
	arts   map[string]map[int]*Artifact
	order  []string
	errors map[string]string   // build -> error
	output map[string][]string // build -> last message lines
	other  []string            // ui errors not tied to a build
}

const keepLines = 40

// parse reads packer's machine-readable lines: TIMESTAMP,TARGET,TYPE,DATA... with commas in
// data written as %!(PACKER_COMMA) and newlines as \n.
func parse(r io.Reader, progress io.Writer) (*parseResult, error) {
	res := &parseResult{arts: map[string]map[int]*Artifact{}, errors: map[string]string{}, output: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if len(f) < 3 {
			continue
		}
		target, typ, data := f[1], f[2], f[3:]
		for i := range data {
			data[i] = unescape(data[i])
		}
		switch typ {
		case "ui":
			if len(data) < 2 {
				continue
			}
			msg := data[1]
			if progress != nil {
				fmt.Fprintln(progress, msg)
			}
			for _, line := range strings.Split(msg, "\n") {
				if b, text, ok := buildLine(line); ok {
					res.output[b] = appendTail(res.output[b], text)
				} else if data[0] == "error" && strings.TrimSpace(line) != "" {
					res.other = appendTail(res.other, line)
				}
			}
		case "artifact":
			if len(data) < 2 {
				continue
			}
			var idx int
			if _, err := fmt.Sscanf(data[0], "%d", &idx); err != nil {
				return nil, fmt.Errorf("artifact index %q", data[0])
			}
			if res.arts[target] == nil {
				res.arts[target] = map[int]*Artifact{}
				res.order = append(res.order, target)
			}
			a := res.arts[target][idx]
			if a == nil {
				a = &Artifact{Build: target}
				res.arts[target][idx] = a
			}
			switch data[1] {
			case "builder-id":
				a.BuilderID = at(data, 2)
			case "id":
				a.ID = at(data, 2)
			case "string":
				a.String = at(data, 2)
			case "file":
				a.Files = append(a.Files, at(data, 3))
			}
		case "error":
			res.errors[target] = strings.Join(data, ",")
		}
	}
	return res, sc.Err()
}

func (r *parseResult) artifacts() []Artifact {
	var out []Artifact
	for _, b := range r.order {
		idx := make([]int, 0, len(r.arts[b]))
		for i := range r.arts[b] {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		for _, i := range idx {
			out = append(out, *r.arts[b][i])
		}
	}
	return out
}

func (r *parseResult) buildError(template string, werr error, stderr string) error {
	e := &BuildError{Template: template}
	names := make([]string, 0, len(r.errors))
	for b := range r.errors {
		names = append(names, b)
	}
	sort.Strings(names)
	if len(names) > 0 {
		e.Build, e.Message, e.Output = names[0], r.errors[names[0]], r.output[names[0]]
	} else {
		// Packer failed before any build ran (bad template, plugin missing).
		e.Message = strings.TrimSpace(strings.Join(r.other, "\n") + "\n" + stderr)
		if e.Message == "" && werr != nil {
			e.Message = werr.Error()
		}
	}
	return e
}

// buildLine splits "==> NAME: text" or "    NAME: text" into the build name and the text.
func buildLine(line string) (build, text string, ok bool) {
	rest := strings.TrimPrefix(line, "==> ")
	rest = strings.TrimLeft(rest, " ")
	i := strings.Index(rest, ": ")
	if i <= 0 || strings.ContainsAny(rest[:i], " \t") {
		if strings.HasSuffix(rest, ":") && !strings.ContainsAny(rest, " \t") {
			return rest[:len(rest)-1], "", true
		}
		return "", "", false
	}
	return rest[:i], rest[i+2:], true
}

func appendTail(lines []string, l string) []string {
	lines = append(lines, l)
	if len(lines) > keepLines {
		lines = lines[len(lines)-keepLines:]
	}
	return lines
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

func unescape(s string) string {
	s = strings.ReplaceAll(s, "%!(PACKER_COMMA)", ",")
	s = strings.ReplaceAll(s, `\n`, "\n")
	return strings.ReplaceAll(s, `\r`, "\r")
}

// PluginName is the executable name packer 1.9 loads from PACKER_PLUGIN_PATH; its builders
// are zops-local and zops-ec2.
const PluginName = "packer-plugin-zops"

// EnsurePlugin builds the plugin from packer/ into the tool cache, keyed by the hash of its
// sources (go files, go.mod, go.sum, and internal/ami which it imports), and returns the directory holding it. A second call
// with unchanged sources is a hash of a few files.
func EnsurePlugin(ctx context.Context) (string, error) {
	if d := config.PackerPluginDir(); d != "" { // tests point at a prebuilt plugin
		return d, nil
	}
	src := PluginSourceDir()
	var deps []string
	for _, d := range pluginDeps {
		deps = append(deps, filepath.Join(config.RepoRoot(), d))
	}
	sum, err := sourceHash(src, deps...)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(tools.CacheDir(), "packer-plugins", sum)
	bin := filepath.Join(dir, PluginName)
	if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build packer plugin: %w", err)
	}
	fmt.Fprintf(os.Stderr, "building %s from %s (cached in %s)\n", PluginName, src, dir)
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, ".")
	cmd.Dir = src
	// -mod=mod: the plugin requires the main module through a replace (for internal/ami), so a
	// dependency bump landed in the main go.mod would otherwise stop this build until
	// packer/go.mod is tidied; go then updates packer/go.mod itself (commit the diff).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("build packer plugin in %s: %w\n%s", src, err, out.String())
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("build packer plugin: %w", err)
	}
	return dir, nil
}
