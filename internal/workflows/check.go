// Package workflows checks the GitHub Actions workflows in .github/workflows against the rules
// that make them safe to run against production: actionlint reports nothing; every action is
// pinned by a reviewed commit with its tag in a comment; every `go tool mage X` names a target
// the magefiles define, and the job sets the ZOPS_* settings that target needs in prod (the
// Targets table); every job that changes or loads production holds the one production
// concurrency group; a job that can mint an OIDC token runs in a GitHub environment; no
// long-lived AWS key appears anywhere. The checks run in `go tool mage test`; a workflow is
// never tried on GitHub from here, so these rules are what stands between an edit and a broken
// or unsafe deploy.
package workflows

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/rhysd/actionlint"
)

// Problem is one finding in one workflow file.
type Problem struct {
	File string
	Line int
	Rule string // actionlint:<kind>, pin, mage, env, concurrency, permissions, environment, shell, key
	Msg  string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: [%s] %s", p.File, p.Line, p.Rule, p.Msg)
}

// Checker holds what the workflows are checked against.
type Checker struct {
	// Mage is every target the magefiles define (MageTargets), with its number of arguments.
	Mage map[string]int
	// Targets is the table of targets workflows may run with their prod settings.
	Targets map[string]Target
	// Pins are the allowed action commits (Pins).
	Pins map[string]map[string]string
	// Shellcheck is the shellcheck executable actionlint runs on run: blocks; empty skips it.
	Shellcheck string
}

// CheckDir checks every *.yml and *.yaml file in dir.
func (c Checker) CheckDir(dir string) ([]Problem, error) {
	var files []string
	for _, pat := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("check workflows: no workflow files in %s", dir)
	}
	sort.Strings(files)
	var all []Problem
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("check workflows: %w", err)
		}
		ps, err := c.Check(filepath.Base(f), src)
		if err != nil {
			return nil, err
		}
		all = append(all, ps...)
	}
	return all, nil
}

// Check checks one workflow; name is used in the problems (and by actionlint for the path).
func (c Checker) Check(name string, src []byte) ([]Problem, error) {
	var ps []Problem
	add := func(line int, rule, format string, args ...any) {
		ps = append(ps, Problem{File: name, Line: line, Rule: rule, Msg: fmt.Sprintf(format, args...)})
	}

	// actionlint: syntax, expressions, contexts, action inputs, shellcheck on run: blocks.
	// The path is not a real file, so actionlint neither looks for a project config nor
	// resolves local actions: the workflows here use none.
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{Shellcheck: c.Shellcheck})
	if err != nil {
		return nil, fmt.Errorf("actionlint: %w", err)
	}
	lintErrs, err := l.Lint(filepath.Join("<workflows>", name), src, nil)
	if err != nil {
		return nil, fmt.Errorf("actionlint %s: %w", name, err)
	}
	for _, e := range lintErrs {
		add(e.Line, "actionlint:"+e.Kind, "%s", e.Message)
	}

	w, errs := actionlint.Parse(src)
	if len(errs) > 0 || w == nil {
		if len(lintErrs) == 0 {
			for _, e := range errs {
				add(e.Line, "parse", "%s", e.Message)
			}
		}
		return ps, nil
	}
	lines := strings.Split(string(src), "\n")

	ps = append(ps, keyProblems(name, src)...)

	if w.Permissions == nil {
		for _, j := range w.Jobs {
			if j.Permissions == nil {
				add(j.Pos.Line, "permissions", "job %s has no permissions and the workflow sets none: the token gets the repository default; declare permissions (contents: read at least)", j.ID.Value)
			}
		}
	}
	if w.Permissions != nil && w.Permissions.All != nil && w.Permissions.All.Value == "write-all" {
		add(w.Permissions.Pos.Line, "permissions", "permissions: write-all: give each job only the scopes it needs")
	}

	for _, id := range sortedJobs(w) {
		j := w.Jobs[id]
		// GitHub's default shell is `bash -e`, without pipefail: `mage x | tee log` would pass
		// with mage failing. An explicit `shell: bash` runs `bash -eo pipefail`.
		for _, st := range j.Steps {
			if ex, ok := st.Exec.(*actionlint.ExecRun); ok && runShell(w, j, ex) != "bash" {
				add(st.Pos.Line, "shell", "job %s: a run: step without `shell: bash` (set it in `defaults: run:`) runs without pipefail, so a failing command in a pipe passes", id)
			}
		}
		env := map[string]string{}
		mergeEnv(env, w.Env)
		mergeEnv(env, j.Env)

		perms := w.Permissions
		if j.Permissions != nil {
			perms = j.Permissions
		}
		environment := ""
		if j.Environment != nil && j.Environment.Name != nil {
			environment = j.Environment.Name.Value
		}
		if grants(perms, "id-token", "write") && environment == "" {
			add(j.Pos.Line, "environment", "job %s may mint an OIDC token (id-token: write) but runs in no environment: add `environment:` so the role's trust (sub = repo:R:environment:E) and the environment's protection rules apply", id)
		}
		if perms != nil && perms.All != nil && perms.All.Value == "write-all" {
			add(perms.Pos.Line, "permissions", "job %s: permissions: write-all: name only the scopes it needs", id)
		}

		group, cancel, groupLine := "", false, j.Pos.Line
		if conc := j.Concurrency; conc != nil && conc.Group != nil {
			group, groupLine = conc.Group.Value, conc.Group.Pos.Line
			cancel = conc.CancelInProgress != nil && conc.CancelInProgress.Value
		} else if conc := w.Concurrency; conc != nil && conc.Group != nil {
			group, groupLine = conc.Group.Value, conc.Group.Pos.Line
			cancel = conc.CancelInProgress != nil && conc.CancelInProgress.Value
		}
		exclusive := environment == ProdEnvironment
		why := "runs in environment " + ProdEnvironment

		if wc := j.WorkflowCall; wc != nil && wc.Uses != nil {
			ps = append(ps, c.pinProblems(name, lines, wc.Uses)...)
		}
		for _, st := range j.Steps {
			stepEnv := map[string]string{}
			for k, v := range env {
				stepEnv[k] = v
			}
			mergeEnv(stepEnv, st.Env)
			switch ex := st.Exec.(type) {
			case *actionlint.ExecAction:
				ps = append(ps, c.pinProblems(name, lines, ex.Uses)...)
			case *actionlint.ExecRun:
				if ex.Run == nil {
					continue
				}
				calls, bad := MageCalls(ex.Run.Value, c.Mage)
				for _, b := range bad {
					add(ex.Run.Pos.Line, "mage", "job %s: %s", id, b)
				}
				for _, t := range calls {
					spec, ok := c.Targets[t]
					if !ok {
						add(ex.Run.Pos.Line, "mage", "job %s runs `go tool mage %s`, which is not in workflows.Targets: add it there with the ZOPS_* settings it needs in prod", id, t)
						continue
					}
					if spec.Exclusive && !exclusive {
						exclusive, why = true, "runs "+t
					}
					for _, v := range spec.Env {
						val, set := stepEnv[v]
						switch {
						case !set || strings.TrimSpace(val) == "":
							add(ex.Run.Pos.Line, "env", "job %s runs %s but does not set %s: set it in the step's or job's env (from a repository variable, see the README)", id, t, v)
						case v == "ZOPS_ENV" && val != ProdEnvironment:
							add(ex.Run.Pos.Line, "env", "job %s runs %s with ZOPS_ENV=%s: the workflows deploy to %s", id, t, val, ProdEnvironment)
						}
					}
				}
			}
		}
		if exclusive {
			switch {
			case group == "":
				add(j.Pos.Line, "concurrency", "job %s %s but holds no concurrency group: set `concurrency: {group: %s, cancel-in-progress: false}` so it never overlaps another deploy", id, why, ProdGroup)
			case !strings.EqualFold(group, ProdGroup):
				add(groupLine, "concurrency", "job %s %s but uses concurrency group %q: every production job shares %q, or two deploys can overlap", id, why, group, ProdGroup)
			case cancel:
				add(groupLine, "concurrency", "job %s %s with cancel-in-progress: true: a newer run would kill a deploy half-way", id, why)
			}
		}
	}
	sort.SliceStable(ps, func(a, b int) bool { return ps[a].Line < ps[b].Line })
	return ps, nil
}

var shaRef = regexp.MustCompile(`^[0-9a-f]{40}$`)

// pinProblems checks one `uses:` value: a reviewed commit of a known action with its tag in a
// comment on the same line.
func (c Checker) pinProblems(file string, lines []string, uses *actionlint.String) []Problem {
	v := uses.Value
	p := func(format string, args ...any) []Problem {
		return []Problem{{File: file, Line: uses.Pos.Line, Rule: "pin", Msg: fmt.Sprintf(format, args...)}}
	}
	if strings.HasPrefix(v, "./") {
		return nil // an action in this repository: reviewed with the workflow
	}
	if strings.HasPrefix(v, "docker://") {
		if !strings.Contains(v, "@sha256:") {
			return p("%s: pin the image by digest (docker://image@sha256:...)", v)
		}
		return nil
	}
	action, ref, ok := strings.Cut(v, "@")
	if !ok {
		return p("%s has no ref: pin it by full commit SHA with the tag in a comment", v)
	}
	if !shaRef.MatchString(ref) {
		return p("%s is pinned by %q, a tag or branch that can be moved: pin the full 40-hex commit SHA with the tag in a comment (see workflows.Pins)", v, ref)
	}
	tags, known := c.Pins[action]
	if !known {
		return p("%s is not in workflows.Pins: add the action with a commit checked against its repository", action)
	}
	tag, known := tags[ref]
	if !known {
		return p("%s@%s is not a commit in workflows.Pins: use a listed one, or add the new one once checked", action, ref)
	}
	line := ""
	if n := uses.Pos.Line - 1; n >= 0 && n < len(lines) {
		line = lines[n]
	}
	_, comment, _ := strings.Cut(line, "#")
	if strings.TrimSpace(comment) != tag {
		return p("%s@%s: write its tag in a comment on the same line: `# %s`", action, ref, tag)
	}
	return nil
}

// MageCalls returns the targets that `go tool mage` invocations in a run: script name, in
// order, using each target's number of arguments (mage's own rule) to tell targets from
// arguments. Problems are unknown targets and missing arguments.
func MageCalls(script string, mage map[string]int) (targets []string, problems []string) {
	script = strings.ReplaceAll(script, "\\\n", " ")
	for _, line := range strings.Split(script, "\n") {
		fields := strings.Fields(line)
		for i := 0; i+2 < len(fields); i++ {
			if fields[i] != "go" || fields[i+1] != "tool" || fields[i+2] != "mage" {
				continue
			}
			args := fields[i+3:]
			for k, a := range args {
				if isShellOperator(a) {
					args = args[:k]
					break
				}
			}
			// Flags that list or describe targets run none.
			info := false
			var rest []string
			for _, a := range args {
				switch {
				case a == "-l" || a == "-h" || a == "-version" || a == "-init" || a == "-clean":
					info = true
				case strings.HasPrefix(a, "-"):
				default:
					rest = append(rest, a)
				}
			}
			if info {
				continue
			}
			if len(rest) == 0 {
				problems = append(problems, "`go tool mage` with no target runs the default target, which this project does not have")
			}
			for len(rest) > 0 {
				name := strings.ToLower(strings.Trim(rest[0], `"'`))
				n, ok := mage[name]
				if !ok {
					problems = append(problems, fmt.Sprintf("`go tool mage %s`: no such target in magefiles/ (see `go tool mage -l`)", rest[0]))
					break
				}
				if len(rest)-1 < n {
					problems = append(problems, fmt.Sprintf("`go tool mage %s` takes %d argument(s), got %d", name, n, len(rest)-1))
				}
				targets = append(targets, name)
				rest = rest[min(len(rest), 1+n):]
			}
		}
	}
	return targets, problems
}

func isShellOperator(s string) bool {
	for _, op := range []string{"|", "&&", ";", ">", "<", "2>", "&>", ")"} {
		if strings.HasPrefix(s, op) {
			return true
		}
	}
	return strings.HasSuffix(s, ";")
}

// runShell is the shell a run: step uses: its own, the job's default, the workflow's default.
func runShell(w *actionlint.Workflow, j *actionlint.Job, ex *actionlint.ExecRun) string {
	for _, sh := range []*actionlint.String{ex.Shell, defaultShell(j.Defaults), defaultShell(w.Defaults)} {
		if sh != nil {
			return sh.Value
		}
	}
	return ""
}

func defaultShell(d *actionlint.Defaults) *actionlint.String {
	if d == nil || d.Run == nil {
		return nil
	}
	return d.Run.Shell
}

func mergeEnv(dst map[string]string, e *actionlint.Env) {
	if e == nil {
		return
	}
	for _, v := range e.Vars {
		if v.Name != nil && v.Value != nil {
			dst[v.Name.Value] = v.Value.Value
		}
	}
}

func grants(p *actionlint.Permissions, scope, level string) bool {
	if p == nil {
		return false
	}
	if p.All != nil {
		return p.All.Value == "write-all" || p.All.Value == level+"-all"
	}
	for _, s := range p.Scopes {
		if s.Name != nil && s.Value != nil && s.Name.Value == scope && s.Value.Value == level {
			return true
		}
	}
	return false
}

func sortedJobs(w *actionlint.Workflow) []string {
	ids := make([]string, 0, len(w.Jobs))
	for id := range w.Jobs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Long-lived AWS credentials: access key ids (AKIA: an IAM user's; ASIA are temporary but have
// no business in a file either), secret keys assigned to the usual names, and the
// configure-aws-credentials inputs or environment variables that carry keys instead of OIDC.
var (
	accessKeyID = regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)
	secretKey   = regexp.MustCompile(`(?i)(aws_secret_access_key|secret_?access_?key)["']?\s*[:=]\s*["']?[A-Za-z0-9/+]{40}\b`)
	keyInWf     = regexp.MustCompile(`(?i)\baws-(access-key-id|secret-access-key|session-token)\s*:|\bAWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)\b`)
)

func keyProblems(file string, src []byte) []Problem {
	var ps []Problem
	for i, line := range bytes.Split(src, []byte("\n")) {
		switch {
		case accessKeyID.Match(line), secretKey.Match(line):
			ps = append(ps, Problem{File: file, Line: i + 1, Rule: "key", Msg: "a long-lived AWS key: remove it, revoke it, and assume a role through OIDC"})
		case keyInWf.Match(line):
			ps = append(ps, Problem{File: file, Line: i + 1, Rule: "key", Msg: "AWS keys passed to the job: use aws-actions/configure-aws-credentials with role-to-assume (OIDC) and no keys"})
		}
	}
	return ps
}

// LongLivedKeys scans every file under root (skipping .git, state, caches, build outputs and
// dependencies) for AWS access key ids and secret keys.
func LongLivedKeys(root string) ([]Problem, error) {
	skip := map[string]bool{".git": true, ".state": true, "node_modules": true, "cdk.out": true, "reports": true, "vendor": true}
	var ps []Problem
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skip[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil || !info.Mode().IsRegular() || info.Size() > 4<<20 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil // binary
		}
		rel, _ := filepath.Rel(root, path)
		for i, line := range bytes.Split(b, []byte("\n")) {
			if accessKeyID.Match(line) || secretKey.Match(line) {
				ps = append(ps, Problem{File: rel, Line: i + 1, Rule: "key", Msg: "a long-lived AWS key: remove it, revoke it, and assume a role through OIDC"})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan for AWS keys: %w", err)
	}
	return ps, nil
}

// MatchRef reports whether a branch or tag name matches GitHub's filter patterns (on.push.tags
// and the like): `*` matches within a path segment, `**` across, `?` and `+` repeat the
// previous character zero-or-one and one-or-more times, `[...]` is a character class, and a
// pattern starting with `!` excludes; the last pattern that matches decides.
func MatchRef(patterns []string, name string) bool {
	matched := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if globRegexp(p).MatchString(name) {
			matched = !neg
		}
	}
	return matched
}

func globRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch ch := p[i]; ch {
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?', '+':
			b.WriteByte(ch)
		case '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				b.WriteString(regexp.QuoteMeta(p[i:]))
				i = len(p)
				continue
			}
			b.WriteString(p[i : i+j+1])
			i += j
		default:
			b.WriteString(regexp.QuoteMeta(string(ch)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
