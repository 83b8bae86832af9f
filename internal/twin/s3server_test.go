package twin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/twinstate"
)

// Finding 5 (issue 14): the twin passed versitygw's root secret with --secret, readable by any
// local user in ps or /proc/PID/cmdline. It now travels in the environment.
func TestS3ServerSecretsTravelInTheEnvironmentNotTheCommandLine(t *testing.T) {
	srv := S3ServerIn(t.TempDir())
	srv.Bin, srv.Addr, srv.Region = "/bin/true", "127.0.0.1:1", "eu-west-1"
	srv.RootAccess, srv.RootSecret, srv.BoxAccess, srv.BoxSecret = "ROOT", "root-secret-xyz", "BOX", "box-secret-xyz"
	cmd, err := srv.Command()
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Join(cmd.Args, " ")
	for _, secret := range []string{srv.RootSecret, srv.BoxSecret, "--secret", "--access"} {
		if strings.Contains(args, secret) {
			t.Errorf("command line holds %q: %s", secret, args)
		}
	}
	env := strings.Join(cmd.Env, "\n")
	if !strings.Contains(env, "ROOT_SECRET_ACCESS_KEY=root-secret-xyz") || !strings.Contains(env, "ROOT_ACCESS_KEY_ID=ROOT") {
		t.Errorf("root credentials not in the environment")
	}
	// Versioning on, internal IAM with the box as a plain user.
	if !strings.Contains(args, "--versioning-dir "+srv.VersioningDir) || !strings.Contains(args, "--iam-dir "+srv.IAMDir) {
		t.Errorf("args %s", args)
	}
	b, err := os.ReadFile(filepath.Join(srv.IAMDir, "users.json"))
	if err != nil {
		t.Fatal(err)
	}
	var users struct {
		AccessAccounts map[string]struct{ Access, Secret, Role string } `json:"accessAccounts"`
	}
	if err := json.Unmarshal(b, &users); err != nil || users.AccessAccounts["BOX"].Role != "user" {
		t.Errorf("users.json %s: %v", b, err)
	}
	if fi, _ := os.Stat(filepath.Join(srv.IAMDir, "users.json")); fi.Mode().Perm() != 0o600 {
		t.Errorf("users.json mode %v", fi.Mode())
	}
}

// The box's bucket policy is rendered from the same lists as the CDK box role.
func TestBoxBackupsPolicyFromTheSharedDescription(t *testing.T) {
	var doc struct {
		Statement []struct {
			Effect   string
			Action   []string
			Resource []string
		}
	}
	if err := json.Unmarshal([]byte(BoxBackupsPolicy("b", "BOX")), &doc); err != nil {
		t.Fatal(err)
	}
	var deny, allow []string
	for _, s := range doc.Statement {
		if s.Effect == "Deny" {
			deny = append(deny, s.Action...)
		} else {
			allow = append(allow, s.Action...)
		}
	}
	if strings.Join(deny, ",") != strings.Join(config.BoxBackupDeniedActions, ",") {
		t.Errorf("deny %v", deny)
	}
	for _, a := range allow {
		if a == "s3:DeleteObjectVersion" || strings.HasSuffix(a, "*") {
			t.Errorf("allows %s", a)
		}
	}
}

// A state directory from before the box user gets one added, keeping every other secret; the
// box credentials are used only once the S3 server knows them.
func TestSecretsGainTheBoxUserAndBoxS3ReadyWaitsForTheServer(t *testing.T) {
	d := twinstate.Dir(t.TempDir())
	old := twinstate.Secrets{S3AccessKey: "A", S3SecretKey: "S", PGPassword: "P", ResticPassword: "R", OriginVerify: "O", ClerkSecret: "C"}
	b, _ := json.Marshal(old)
	if err := os.WriteFile(d.Path("secrets.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := d.EnsureSecrets()
	if err != nil || s.BoxS3AccessKey == "" || s.BoxS3SecretKey == "" || s.S3SecretKey != "S" || s.ResticPassword != "R" {
		t.Fatalf("secrets %+v, %v", s, err)
	}
	again, _ := d.ReadSecrets()
	if again.BoxS3AccessKey != s.BoxS3AccessKey {
		t.Fatalf("box user not stored")
	}
	if d.BoxS3Ready(s) {
		t.Fatalf("ready before the server was started with the user")
	}
	srv := S3Server{DataDir: d.Path("s3"), VersioningDir: d.Path("s3-versions"), IAMDir: d.S3IAMDir(), BoxAccess: s.BoxS3AccessKey, BoxSecret: s.BoxS3SecretKey}
	if _, err := srv.Command(); err != nil {
		t.Fatal(err)
	}
	if !d.BoxS3Ready(s) {
		t.Fatalf("not ready after the launch wrote the user")
	}
}
