package workflows

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/testenv"
)

var (
	root         = filepath.Join("..", "..")
	workflowsDir = filepath.Join(root, ".github", "workflows")
	magefilesDir = filepath.Join(root, "magefiles")
)

func checker(t *testing.T) Checker {
	t.Helper()
	mage, err := MageTargets(magefilesDir)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		if testenv.Required() {
			t.Fatal("shellcheck is not installed: actionlint needs it to check run: scripts (apt-get install shellcheck)")
		}
		t.Log("shellcheck not installed: run: scripts are not shellchecked")
		sc = ""
	}
	return Checker{Mage: mage, Targets: Targets, Pins: Pins, Shellcheck: sc}
}

func readWorkflow(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(workflowsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Story 7.1.4, 7.2.7 and the spec's CI/CD line: every workflow passes every rule.
func TestWorkflowsPass(t *testing.T) {
	ps, err := checker(t).CheckDir(workflowsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		t.Error(p)
	}
}

// Each rule catches what it is for: one edit of a real workflow per case, and the problem
// that must be reported.
func TestWorkflowsFailOn(t *testing.T) {
	c := checker(t)
	cases := []struct {
		name, file, old, new, rule, want string
	}{
		{"a tag-pinned action", "release.yml",
			"actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0", "actions/checkout@v5",
			"pin", "a tag or branch that can be moved"},
		{"an unreviewed commit", "release.yml",
			"actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8", "actions/checkout@1111111111111111111111111111111111111111",
			"pin", "not a commit in workflows.Pins"},
		{"a pin without its tag comment", "release.yml",
			"actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0", "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8",
			"pin", "write its tag in a comment"},
		{"a misspelled target", "release.yml",
			"run: go tool mage release", "run: go tool mage relase",
			"mage", "`go tool mage relase`: no such target"},
		{"a target with a missing argument", "site.yml",
			"go tool mage site:sync site/out", "go tool mage site:sync",
			"mage", "takes 1 argument(s), got 0"},
		{"a target missing from the table", "release.yml",
			"run: go tool mage release", "run: go tool mage releases:history",
			"mage", "not in workflows.Targets"},
		{"a missing variable", "site.yml",
			"          ZOPS_DISTRIBUTION_ID: ${{ vars.ZOPS_DISTRIBUTION_ID }}\n", "",
			"env", "does not set ZOPS_DISTRIBUTION_ID"},
		{"a variable set empty", "release.yml",
			"ZOPS_VERSION: ${{ github.ref_name }}", `ZOPS_VERSION: ""`,
			"env", "does not set ZOPS_VERSION"},
		{"the wrong environment name", "release.yml",
			"          ZOPS_ENV: prod\n", "          ZOPS_ENV: local\n",
			"env", "ZOPS_ENV=local"},
		{"a second concurrency group", "site.yml",
			"group: zmanim-prod", "group: site-prod",
			"concurrency", `uses concurrency group "site-prod"`},
		{"no concurrency group on a deploy", "ami.yml",
			"    concurrency:\n      group: zmanim-prod\n      cancel-in-progress: false\n", "",
			"concurrency", "holds no concurrency group"},
		{"a deploy that a newer run cancels", "infra.yml",
			"      group: zmanim-prod\n      cancel-in-progress: false", "      group: zmanim-prod\n      cancel-in-progress: true",
			"concurrency", "cancel-in-progress: true"},
		{"a load test outside the group", "loadtest.yml",
			"group: zmanim-prod", "group: nightly",
			"concurrency", "runs loadtest but uses concurrency group"},
		{"id-token without environment", "release.yml",
			"    environment: prod\n", "",
			"environment", "runs in no environment"},
		{"permissions left to the repository default", "ci.yml",
			"permissions:\n  contents: read\n", "",
			"permissions", "has no permissions"},
		{"a long-lived key in the workflow", "release.yml",
			"          role-to-assume: ${{ vars.ZOPS_RELEASE_ROLE_ARN }}\n",
			"          aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}\n          aws-secret-access-key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}\n",
			"key", "AWS keys passed to the job"},
		{"an access key id literal", "release.yml",
			"          ZOPS_ENV: prod\n", "          ZOPS_ENV: prod\n          ZOPS_NOTE: " + fakeKeyID() + "\n",
			"key", "a long-lived AWS key"},
		{"the default shell, without pipefail", "infra.yml",
			"defaults:\n  run:\n    shell: bash\n", "",
			"shell", "runs without pipefail"},
		{"a shellcheck finding", "ci.yml",
			"run: .ci/run", "run: cd $HOME/x && .ci/run",
			"actionlint:shellcheck", "SC2086"},
		{"an actionlint finding", "release.yml",
			"${{ github.ref_name }}", "${{ github.ref_nme }}",
			"actionlint:expression", "ref_nme"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rule == "actionlint:shellcheck" && c.Shellcheck == "" {
				t.Skip("shellcheck not installed")
			}
			src := readWorkflow(t, tc.file)
			if !strings.Contains(src, tc.old) {
				t.Fatalf("%s no longer contains %q: update the case", tc.file, tc.old)
			}
			ps, err := c.Check(tc.file, []byte(strings.Replace(src, tc.old, tc.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				if p.Rule == tc.rule && strings.Contains(p.Msg, tc.want) {
					t.Logf("reported: %s", p)
					return
				}
			}
			t.Errorf("no [%s] problem containing %q; got %v", tc.rule, tc.want, ps)
		})
	}
}

// fakeKeyID looks like an IAM user's access key id; built at run time so this file holds none.
func fakeKeyID() string { return "AKIA" + strings.Repeat("Q", 16) }

// No long-lived AWS key anywhere in the repository (and the scan does find one).
func TestNoLongLivedKeyInRepository(t *testing.T) {
	ps, err := LongLivedKeys(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		t.Error(p)
	}
	dir := t.TempDir()
	secret := "wJalrXUtnFEMI/K7MDENG/" + strings.Repeat("x", 18)
	files := map[string]string{"a.env": "AWS_ACCESS_KEY_ID=" + fakeKeyID() + "\n", "credentials": "[default]\naws_secret_access_key = " + secret + "\n"}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ps, err = LongLivedKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Errorf("planted an access key id and a secret key, found %v", ps)
	}
}

// The tag conventions: vX.Y.Z releases the API, vX.Y.Z-ami builds and rolls out an image,
// and neither fires for the other's tag (or for a pre-release tag).
func TestTagRouting(t *testing.T) {
	tags := func(file string) []string {
		w, errs := actionlint.Parse([]byte(readWorkflow(t, file)))
		if len(errs) > 0 {
			t.Fatalf("%s: %v", file, errs)
		}
		var out []string
		for _, e := range w.On {
			if h, ok := e.(*actionlint.WebhookEvent); ok && h.Hook.Value == "push" && h.Tags != nil {
				for _, v := range h.Tags.Values {
					out = append(out, v.Value)
				}
			}
		}
		return out
	}
	for _, c := range []struct {
		tag            string
		release, image bool
	}{
		{"v1.2.3", true, false},
		{"v10.0.12", true, false},
		{"v1.2.3-ami", false, true},
		{"v1.2.3-rc1", false, false},
		{"v1.2", false, false},
		{"release-1", false, false},
	} {
		if got := MatchRef(tags("release.yml"), c.tag); got != c.release {
			t.Errorf("release.yml on tag %s: %v, want %v", c.tag, got, c.release)
		}
		if got := MatchRef(tags("ami.yml"), c.tag); got != c.image {
			t.Errorf("ami.yml on tag %s: %v, want %v", c.tag, got, c.image)
		}
		if got := MatchRef(tags("infra.yml"), c.tag); got {
			t.Errorf("infra.yml fires on tag %s: deploys run from main", c.tag)
		}
	}
}

func TestMatchRef(t *testing.T) {
	for _, c := range []struct {
		patterns []string
		name     string
		want     bool
	}{
		{[]string{"v*"}, "v1.2.3", true},
		{[]string{"v*", "!v*-ami"}, "v1.2.3-ami", false},
		{[]string{"v[0-9]+.[0-9]+.[0-9]+"}, "v1.2.3x", false},
		{[]string{"releases/**"}, "releases/a/b", true},
		{[]string{"releases/*"}, "releases/a/b", false},
		{[]string{"v1.?"}, "v1", true}, // ? repeats the dot zero or one times
		{[]string{"v1.?"}, "v1..", false},
		{[]string{"!v1"}, "v1", false},
	} {
		if got := MatchRef(c.patterns, c.name); got != c.want {
			t.Errorf("MatchRef(%q, %q) = %v, want %v", c.patterns, c.name, got, c.want)
		}
	}
}

// The table only names settings the targets read: an option the target (or its namespace)
// documents, or a configuration override.
func TestTargetSettingsAreReadByTheTargets(t *testing.T) {
	docs, err := MageDocs(magefilesDir)
	if err != nil {
		t.Fatal(err)
	}
	overrides := map[string]bool{"ZOPS_ENV": true} // config.Load's environment selector
	for _, o := range config.Overrides() {
		overrides[o[0]] = true
	}
	for name, spec := range Targets {
		doc, ok := docs[name]
		if !ok {
			continue // reported by TestWorkflowsPass when a workflow runs it
		}
		ns, _, _ := strings.Cut(name, ":")
		for other, d := range docs {
			if strings.HasPrefix(other, ns+":") {
				doc += d
			}
		}
		for _, v := range spec.Env {
			if !overrides[v] && !strings.Contains(doc, v) {
				t.Errorf("Targets[%q] requires %s, which the target does not document and is no configuration override", name, v)
			}
		}
	}
}

// The go/ast reading of the magefiles agrees with mage itself.
func TestMageTargetsMatchMageList(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the magefiles")
	}
	mage, err := MageTargets(magefilesDir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "mage", "-l")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool mage -l: %v\n%s", err, out)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "  ") {
			continue
		}
		f := strings.Fields(line)
		if len(f) > 0 {
			listed[strings.ToLower(strings.TrimSuffix(f[0], "*"))] = true
		}
	}
	var missing, extra []string
	for n := range listed {
		if _, ok := mage[n]; !ok {
			missing = append(missing, n)
		}
	}
	aliases := aliasNames(t)
	for n := range mage {
		if !listed[n] && !aliases[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Errorf("go/ast and `mage -l` disagree: listed by mage only %v, found only by go/ast %v", missing, extra)
	}
	if len(listed) < 10 {
		t.Errorf("mage -l listed %d targets: output format changed?\n%s", len(listed), out)
	}
}

// aliasNames are the keys of magefiles' Aliases (mage runs them, -l does not list them).
func aliasNames(t *testing.T) map[string]bool {
	t.Helper()
	out, err := MageAliases(magefilesDir)
	if err != nil {
		t.Fatal(err)
	}
	if !out["release:history"] || !out["ami"] {
		t.Errorf("aliases read from the magefiles: %v; want release:history and ami among them", out)
	}
	return out
}
