package boxspec

import (
	"bufio"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/config"
)

var update = flag.Bool("update", false, "rewrite packer/recipe/contract.sh from the package")

func repo(t *testing.T, parts ...string) string {
	t.Helper()
	return filepath.Join(append([]string{config.RepoRoot()}, parts...)...)
}

// The recipe reads the contract through contract.sh: it must be the package's rendering.
func TestShellIncludeCurrent(t *testing.T) {
	path := repo(t, "packer", "recipe", "contract.sh")
	want := ShellInclude()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./internal/boxspec -update`)", err)
	}
	if string(got) != want {
		t.Fatalf("%s is stale: run `go test ./internal/boxspec -update`", path)
	}
}

// unit is a parsed unit file: key -> every value, across sections ("Section.Key").
type unit map[string][]string

func (u unit) one(k string) string {
	if v := u[k]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func (u unit) words(k string) []string {
	var out []string
	for _, v := range u[k] {
		out = append(out, strings.Fields(v)...)
	}
	return out
}

func readUnit(t *testing.T, name string) unit {
	t.Helper()
	var path string
	for _, dir := range []string{repo(t, "deploy", "systemd"), repo(t, "deploy", "systemd", "backup")} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			path = filepath.Join(dir, name)
		}
	}
	if path == "" {
		t.Fatalf("unit %s is in the contract but not in deploy/systemd", name)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	sec := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			sec = strings.Trim(l, "[]")
		default:
			k, v, _ := strings.Cut(l, "=")
			u[sec+"."+k] = append(u[sec+"."+k], v)
		}
	}
	return u
}

// Every unit of the contract exists and every unit file shipped is in the contract.
func TestUnitsShippedMatchContract(t *testing.T) {
	var shipped []string
	for _, dir := range []string{repo(t, "deploy", "systemd"), repo(t, "deploy", "systemd", "backup")} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !e.IsDir() {
				shipped = append(shipped, e.Name())
			}
		}
	}
	want := Units()
	slices.Sort(shipped)
	slices.Sort(want)
	if !slices.Equal(shipped, want) {
		t.Fatalf("deploy/systemd ships %v\ncontract lists     %v", shipped, want)
	}
}

// The units name the contract's paths, users and ports; the old names (api.env read by the
// unit but zmanim.env written at boot, restic-* timers, postgresql.service) are gone.
func TestUnitsUseContract(t *testing.T) {
	api := readUnit(t, UnitAPI)
	if got := api.one("Service.EnvironmentFile"); got != APIEnvFile {
		t.Errorf("%s EnvironmentFile=%s, contract %s", UnitAPI, got, APIEnvFile)
	}
	exec := api.one("Service.ExecStart")
	for _, w := range []string{ZopsBox + " run", "--binary " + APIPath, "--env-file " + APIEnvFile} {
		if !strings.Contains(exec, w) {
			t.Errorf("%s ExecStart=%s lacks %q", UnitAPI, exec, w)
		}
	}
	if u := api.one("Service.User"); u != User {
		t.Errorf("%s User=%s, contract %s", UnitAPI, u, User)
	}
	for _, dep := range []string{UnitFirstBoot, UnitPostgres, UnitRedis, UnitAPISocket} {
		if !slices.Contains(api.words("Unit.Requires"), dep) || !slices.Contains(api.words("Unit.After"), dep) {
			t.Errorf("%s must require and come after %s", UnitAPI, dep)
		}
	}
	if p := readUnit(t, UnitAPISocket).one("Socket.ListenStream"); p != "8080" || APIPort != 8080 {
		t.Errorf("%s ListenStream=%s, contract %d", UnitAPISocket, p, APIPort)
	}
	pg := readUnit(t, UnitPostgres)
	if e := pg.one("Service.ExecStart"); e != PGBinDir+"/postgres -D "+PGData {
		t.Errorf("%s ExecStart=%s", UnitPostgres, e)
	}
	if pg.one("Service.User") != PGUser {
		t.Errorf("%s runs as %s, contract %s", UnitPostgres, pg.one("Service.User"), PGUser)
	}
	rd := readUnit(t, UnitRedis)
	if e := rd.one("Service.ExecStart"); e != RedisServer+" "+RedisConf {
		t.Errorf("%s ExecStart=%s", UnitRedis, e)
	}
	if rd.one("Service.User") != RedisUser {
		t.Errorf("%s runs as %s", UnitRedis, rd.one("Service.User"))
	}
	fb := readUnit(t, UnitFirstBoot)
	if e := fb.one("Service.ExecStart"); e != ZopsBox+" firstboot" {
		t.Errorf("%s ExecStart=%s", UnitFirstBoot, e)
	}
	tg := readUnit(t, UnitTarget)
	wants := tg.words("Unit.Wants")
	slices.Sort(wants)
	want := TargetWants()
	slices.Sort(want)
	if !slices.Equal(wants, want) {
		t.Errorf("%s Wants=%v, contract %v (every backup timer, WAL and base included)", UnitTarget, wants, want)
	}
	for _, s := range []string{UnitBackup, UnitVerify, UnitBase, UnitWALShip} {
		u := readUnit(t, s)
		if !strings.HasPrefix(u.one("Service.ExecStart"), ZopsBackup+" ") {
			t.Errorf("%s ExecStart=%s, contract binary %s", s, u.one("Service.ExecStart"), ZopsBackup)
		}
		if u.one("Service.User") != BackupUser {
			t.Errorf("%s User=%s, contract %s", s, u.one("Service.User"), BackupUser)
		}
		if u.one("Service.EnvironmentFile") != "-"+InstanceFile {
			t.Errorf("%s does not read the instance file %s", s, InstanceFile)
		}
		for _, w := range u.words("Unit.After") {
			if w == "postgresql.service" || w == "redis.service" {
				t.Errorf("%s orders after %s, which the box does not run (contract: %s, %s)", s, w, UnitPostgres, UnitRedis)
			}
		}
	}
}

// The SSM parameter names are internal/config's.
func TestParamsMatchConfig(t *testing.T) {
	pairs := [][2]string{
		{ParamOriginVerify, config.ParamOriginVerify}, {ParamConfig, config.ParamConfig},
		{ParamResticPass, config.ParamResticPass}, {ParamClerkSecret, config.ParamClerkSecret},
		{ParamPGPassword, config.ParamPGPassword},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("boxspec parameter %q, config %q", p[0], p[1])
		}
	}
}

// The API's environment carries what the API reads and never a secret it does not need.
func TestAPIEnvKeys(t *testing.T) {
	names := APIEnvNames()
	for _, forbidden := range []string{"RESTIC_PASSWORD", "CLERK_SECRET_KEY", "POSTGRES_PASSWORD", "ZMANIM_RESTIC_PASSWORD"} {
		if slices.Contains(names, forbidden) {
			t.Errorf("APIEnv holds %s", forbidden)
		}
	}
	for _, k := range APIEnv {
		if k.Source == FromSecret && k.Param != ParamOriginVerify {
			t.Errorf("%s reads secret %s: the API needs only the origin-verify secret", k.Name, k.Param)
		}
		if !strings.HasPrefix(k.Name, "ZMANIM_") {
			t.Errorf("%s: the API reads ZMANIM_* names only", k.Name)
		}
	}
	// The reference API documents the variables it reads in its package comment.
	b, err := os.ReadFile(repo(t, "examples", "zmanim-api", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !strings.Contains(string(b), n) {
			t.Errorf("APIEnv key %s is not read by examples/zmanim-api", n)
		}
	}
}

func TestVolumeLink(t *testing.T) {
	if got := VolumeLink("vol-0abc123"); got != "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0abc123" {
		t.Fatal(got)
	}
}
