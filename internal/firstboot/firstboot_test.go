package firstboot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/shtetl/zmanim-ops/internal/boxspec"
)

// fakeSystem answers the programs first boot runs, the way the real ones do on a box, and
// records the calls. blkidRC is what `blkid -p DEV` returns until mkfs ran.
type fakeSystem struct {
	mu      sync.Mutex
	root    string
	blkidRC int
	mounted bool
	calls   []string
}

func (f *fakeSystem) Run(_ context.Context, name string, args ...string) (string, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := strings.TrimSpace(name + " " + strings.Join(args, " "))
	f.calls = append(f.calls, call)
	switch {
	case name == "blkid" && slices.Contains(args, "UUID"):
		if f.blkidRC != 0 {
			return "", 2, nil
		}
		return "1111-2222\n", 0, nil
	case name == "blkid":
		return `/dev/fake: UUID="1111-2222" TYPE="xfs"`, f.blkidRC, nil
	case strings.HasPrefix(name, "mkfs."):
		f.blkidRC = 0
		return "", 0, nil
	case name == "mountpoint":
		if f.mounted {
			return "", 0, nil
		}
		return "", 32, nil
	case name == "mount":
		f.mounted = true
		return "", 0, nil
	case name == "runuser": // initdb
		d := filepath.Join(f.root, boxspec.PGData)
		os.WriteFile(filepath.Join(d, "PG_VERSION"), []byte("15\n"), 0o600)
		os.WriteFile(filepath.Join(d, "postgresql.conf"), []byte("# initdb\n"), 0o600)
		return "", 0, nil
	}
	return "", 0, nil
}

func (f *fakeSystem) count(prefix string) int {
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

type fakeSSM map[string]string

func (f fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	v, ok := f[aws.ToString(in.Name)]
	if !ok {
		return nil, &ssmtypes.ParameterNotFound{Message: aws.String("not found")}
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Value: aws.String(v)}}, nil
}

const prefix = "/zmanim/test"

func goodSSM() fakeSSM {
	return fakeSSM{
		prefix + "/origin-verify-secret": `s3cr"et`,
		prefix + "/config":               `{"origin_verify_header":"X-Origin-Verify","jwks_url":"https://c/.well-known/jwks.json","jwt_issuer":"https://c","jwt_audience":"https://zmanim"}`,
		prefix + "/restic-password":      "never-in-the-env-file",
		prefix + "/clerk-secret-key":     "sk_never",
	}
}

func newBoot(t *testing.T, sys *fakeSystem, params Params) *Boot {
	t.Helper()
	root := sys.root
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	os.WriteFile(filepath.Join(root, "dev", "fake"), nil, 0o600)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "fstab"), []byte("UUID=root / ext4 defaults 0 1\n/dev/nvme1n1 /data xfs defaults 0 2\n"), 0o644)
	return &Boot{
		Root: root, In: Inputs{SSMPrefix: prefix, Device: "/dev/fake", Wait: time.Second},
		Exec: sys, SSM: params, Out: &strings.Builder{}, Poll: 10 * time.Millisecond,
		Lookup: func(string) (int, int, error) { return os.Getuid(), os.Getgid(), nil },
	}
}

func TestBlankVolumeFormattedOnceThenKept(t *testing.T) {
	t.Parallel()
	sys := &fakeSystem{root: t.TempDir(), blkidRC: 2}
	b := newBoot(t, sys, goodSSM())
	if err := b.Run(context.Background()); err != nil {
		t.Fatalf("first boot: %v\n%s", err, b.Out)
	}
	if sys.count("mkfs.xfs -L zmanim-data /dev/fake") != 1 || sys.count("runuser") != 1 || sys.count("mount -t xfs -o noatime UUID=1111-2222 /data") != 1 {
		t.Fatalf("first boot on a blank volume: want one mkfs and one initdb, calls %v", sys.calls)
	}
	// A reboot with the same volume: nothing formatted, no second initdb, same fstab.
	fstab1, _ := os.ReadFile(filepath.Join(sys.root, "etc", "fstab"))
	if err := b.Run(context.Background()); err != nil {
		t.Fatalf("second boot: %v", err)
	}
	fstab2, _ := os.ReadFile(filepath.Join(sys.root, "etc", "fstab"))
	if sys.count("mkfs") != 1 || sys.count("runuser") != 1 || sys.count("mount -t") != 1 {
		t.Fatalf("second boot formatted, re-initialised or re-mounted: %v", sys.calls)
	}
	if string(fstab1) != string(fstab2) {
		t.Fatalf("fstab changed on rerun:\n%s\n---\n%s", fstab1, fstab2)
	}
	want := "UUID=root / ext4 defaults 0 1\n" // the old user data's /data line is gone
	if string(fstab2) != want {
		t.Fatalf("fstab:\n%s\nwant\n%s", fstab2, want)
	}
	conf, _ := os.ReadFile(filepath.Join(sys.root, boxspec.PGData, "postgresql.conf"))
	if strings.Count(string(conf), "include_if_exists = '"+boxspec.PGConf+"'") != 1 {
		t.Fatalf("postgresql.conf include not exactly once:\n%s", conf)
	}
}

func TestProbeAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		rc       int
		wantErr  error
		wantMkfs bool
	}{
		{"blank is formatted", 2, nil, true},
		{"a filesystem is kept", 0, nil, false},
		{"a probe error refuses", 4, ErrProbe, false},
		{"an ambiguous probe refuses", 8, ErrProbe, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sys := &fakeSystem{root: t.TempDir(), blkidRC: tc.rc}
			b := newBoot(t, sys, goodSSM())
			err := b.prepareVolume(context.Background(), "/dev/fake")
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got := sys.count("mkfs") == 1; got != tc.wantMkfs {
				t.Fatalf("mkfs = %v, want %v", got, tc.wantMkfs)
			}
		})
	}
}

func TestEnvFileHoldsOnlyTheAPIKeys(t *testing.T) {
	t.Parallel()
	sys := &fakeSystem{root: t.TempDir()}
	b := newBoot(t, sys, goodSSM())
	if err := b.writeEnv(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(sys.root, boxspec.APIEnvFile)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("%s mode %v, want 0640", boxspec.APIEnvFile, fi.Mode().Perm())
	}
	body, _ := os.ReadFile(p)
	var keys []string
	for _, l := range strings.Split(string(body), "\n") {
		if k, _, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			keys = append(keys, k)
		}
	}
	want := boxspec.APIEnvNames()
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	for _, leak := range []string{"never-in-the-env-file", "sk_never"} {
		if strings.Contains(string(body), leak) {
			t.Fatalf("env file holds a secret the API does not need")
		}
	}
	for _, line := range []string{`ZMANIM_ORIGIN_VERIFY_SECRET="s3cr\"et"`, "ZMANIM_ORIGIN_VERIFY_HEADER=X-Origin-Verify", "ZMANIM_DATABASE_URL=" + boxspec.APIDatabaseURL} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("env file lacks %s:\n%s", line, body)
		}
	}
	if strings.Contains(b.Out.(*strings.Builder).String(), "s3cr") {
		t.Fatal("a secret was printed")
	}
}

// A missing parameter fails first boot and the message names the parameter.
func TestMissingParameterFailsNamingIt(t *testing.T) {
	t.Parallel()
	for _, missing := range []string{"/origin-verify-secret", "/config"} {
		sys := &fakeSystem{root: t.TempDir()}
		params := goodSSM()
		delete(params, prefix+missing)
		b := newBoot(t, sys, params)
		err := b.Run(context.Background())
		if !errors.Is(err, ErrParameterMissing) || !strings.Contains(err.Error(), prefix+missing) {
			t.Fatalf("missing %s: err = %v", missing, err)
		}
		if !strings.Contains(b.Out.(*strings.Builder).String(), prefix+missing) {
			t.Fatalf("the log does not name %s:\n%s", missing, b.Out)
		}
		if _, err := os.Stat(filepath.Join(sys.root, boxspec.APIEnvFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("an env file was written although a parameter is missing")
		}
	}
	params := goodSSM()
	params[prefix+"/config"] = `{"origin_verify_header":"X"}`
	b := newBoot(t, &fakeSystem{root: t.TempDir()}, params)
	if err := b.writeEnv(context.Background()); !errors.Is(err, ErrParameterMissing) || !strings.Contains(err.Error(), `"jwks_url"`) {
		t.Fatalf("config without jwks_url: %v", err)
	}
}

func TestVolumeNeverAttached(t *testing.T) {
	t.Parallel()
	sys := &fakeSystem{root: t.TempDir()}
	b := newBoot(t, sys, goodSSM())
	b.In = Inputs{SSMPrefix: prefix, VolumeID: "vol-0abc", Wait: 50 * time.Millisecond}
	err := b.Run(context.Background())
	if !errors.Is(err, ErrNoVolume) || !strings.Contains(err.Error(), boxspec.VolumeLink("vol-0abc")) {
		t.Fatalf("err = %v", err)
	}
	if sys.count("mkfs") != 0 || sys.count("mount") != 0 {
		t.Fatalf("acted without a volume: %v", sys.calls)
	}
}

func TestInstanceFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "instance.env")
	os.WriteFile(p, []byte("# user data\nZOPS_REGION=eu-west-1\nZOPS_SSM_PREFIX=/zmanim/prod\nZOPS_DATA_VOLUME_ID=vol-1\nZOPS_DATA_WAIT=2m\n"), 0o644)
	kv, err := ReadInstanceFile(p)
	if err != nil {
		t.Fatal(err)
	}
	in, err := InputsFrom(kv)
	if err != nil || in.Region != "eu-west-1" || in.SSMPrefix != "/zmanim/prod" || in.VolumeID != "vol-1" || in.Wait != 2*time.Minute {
		t.Fatalf("%+v %v", in, err)
	}
	os.WriteFile(p, []byte("ZOPS_REGOIN=eu-west-1\n"), 0o644)
	if _, err := ReadInstanceFile(p); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "ZOPS_REGOIN") {
		t.Fatalf("typo accepted: %v", err)
	}
}

func TestEnvLine(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"plain": "K=plain\n", "a b": "K=\"a b\"\n", `q"\`: "K=\"q\\\"\\\\\"\n"} {
		if got, _ := envLine("K", in); got != want {
			t.Errorf("envLine(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := envLine("K", "a\nb"); err == nil {
		t.Error("multi-line value accepted")
	}
}

// fakeClaim records when the claim's two halves run, in the system's call list.
type fakeClaim struct {
	sys *fakeSystem
	err error
}

func (c fakeClaim) Claim(context.Context) error {
	c.sys.mu.Lock()
	c.sys.calls = append(c.sys.calls, "CLAIM")
	c.sys.mu.Unlock()
	return c.err
}

func (c fakeClaim) Announce(context.Context) error {
	c.sys.mu.Lock()
	c.sys.calls = append(c.sys.calls, "ANNOUNCE")
	c.sys.mu.Unlock()
	return nil
}

// In production the box claims the volume before it waits for it and touches it, and
// registers in Cloud Map only after the services were started; a failed claim (the old box
// still holds the volume) fails the unit before the volume is probed or formatted.
func TestClaimFirstAnnounceLast(t *testing.T) {
	t.Parallel()
	sys := &fakeSystem{root: t.TempDir(), blkidRC: 0}
	b := newBoot(t, sys, goodSSM())
	b.Claim, b.Start = fakeClaim{sys: sys}, true
	if err := b.Run(context.Background()); err != nil {
		t.Fatalf("boot: %v\n%s", err, b.Out)
	}
	if sys.calls[0] != "CLAIM" || sys.calls[len(sys.calls)-1] != "ANNOUNCE" || sys.calls[len(sys.calls)-2] != "systemctl start --no-block "+boxspec.UnitTarget {
		t.Fatalf("order: %v", sys.calls)
	}

	sys2 := &fakeSystem{root: t.TempDir(), blkidRC: 2}
	b2 := newBoot(t, sys2, goodSSM())
	b2.Claim = fakeClaim{sys: sys2, err: errors.New("the data volume is still attached to another instance")}
	err := b2.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "claim the data volume") || len(sys2.calls) != 1 {
		t.Fatalf("failed claim: %v, calls %v", err, sys2.calls)
	}
}
