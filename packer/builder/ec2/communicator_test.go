package ec2

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

func newComm(t *testing.T) (*Communicator, *fakeAWS) {
	f := newFakeAWS(t)
	return &Communicator{InstanceID: "i-1", Bucket: "bucket", Prefix: "packer-staging/t/", SSM: f, S3: f, Presign: f, Poll: time.Millisecond}, f
}

// TestCommunicatorFullOutput: output beyond GetCommandInvocation's 24,000/8,000 characters
// arrives complete through S3, with the exit code.
func TestCommunicatorFullOutput(t *testing.T) {
	t.Parallel()
	c, _ := newComm(t)
	var out, errb bytes.Buffer
	cmd := &packersdk.RemoteCmd{Command: `i=0; while [ $i -lt 5000 ]; do echo "line $i of the recipe's output"; i=$((i+1)); done; echo "last error" >&2; exit 4`, Stdout: &out, Stderr: &errb}
	if err := c.Start(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	if code := cmd.Wait(); code != 4 {
		t.Errorf("exit = %d", code)
	}
	if out.Len() < 100000 || !strings.Contains(out.String(), "line 4999 of the recipe's output") {
		t.Errorf("stdout truncated: %d bytes", out.Len())
	}
	if !strings.Contains(errb.String(), "last error") {
		t.Errorf("stderr = %q", errb.String())
	}
}

func TestCommunicatorFiles(t *testing.T) {
	t.Parallel()
	c, f := newComm(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "a.sh"), []byte("echo a\n"), 0o755)
	dst := t.TempDir()

	// "src/" uploads the contents, "src" the directory itself.
	if err := c.UploadDir(filepath.Join(dst, "contents"), src+"/", nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "contents", "sub", "a.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("contents upload: %v %v", fi, err)
	}
	if err := c.UploadDir(filepath.Join(dst, "dir"), src, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dst, "dir", filepath.Base(src), "sub", "a.sh")); err != nil {
		t.Errorf("directory upload: %v", err)
	}
	var fi os.FileInfo
	fi, _ = os.Stat(filepath.Join(src, "sub", "a.sh"))
	if err := c.Upload(filepath.Join(dst, "one", "b.sh"), strings.NewReader("echo b\n"), &fi); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "one", "b.sh")); string(b) != "echo b\n" {
		t.Errorf("upload = %q", b)
	}
	var got bytes.Buffer
	if err := c.Download(filepath.Join(dst, "one", "b.sh"), &got); err != nil || got.String() != "echo b\n" {
		t.Errorf("download = %q %v", got.String(), err)
	}
	if err := c.Upload("/proc/zops-no/such/b.sh", strings.NewReader(""), nil); err == nil {
		t.Error("upload to an impossible path succeeded")
	}
	if err := c.DeleteStaged(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys := f.objectKeys(); len(keys) > 0 {
		t.Errorf("left in S3: %v", keys)
	}
}
