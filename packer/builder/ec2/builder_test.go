package ec2

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

type recUI struct {
	packersdk.BasicUi
	mu  sync.Mutex
	buf bytes.Buffer
}

func (u *recUI) Say(m string)     { u.add(m) }
func (u *recUI) Message(m string) { u.add(m) }
func (u *recUI) Error(m string)   { u.add("ERROR " + m) }
func (u *recUI) add(m string)     { u.mu.Lock(); u.buf.WriteString(m + "\n"); u.mu.Unlock() }
func (u *recUI) String() string   { u.mu.Lock(); defer u.mu.Unlock(); return u.buf.String() }

// provisionHook does what the box template's provisioners do, through the communicator:
// upload the staging directory's contents, upload one file, run the recipe.
type provisionHook struct {
	filesDir, dst, script string
	output                bytes.Buffer
}

func (h *provisionHook) Run(ctx context.Context, name string, _ packersdk.Ui, comm packersdk.Communicator, _ interface{}) error {
	if name != packersdk.HookProvision {
		return nil
	}
	if err := comm.UploadDir(h.dst+"/files", h.filesDir+"/", nil); err != nil {
		return err
	}
	if err := comm.Upload(h.dst+"/recipe/run.sh", strings.NewReader(h.script), nil); err != nil {
		return err
	}
	cmd := &packersdk.RemoteCmd{Command: "ZOPS_DISTRO=al2023 sh " + h.dst + "/recipe/run.sh", Stdout: &h.output, Stderr: &h.output}
	if err := comm.Start(ctx, cmd); err != nil {
		return err
	}
	if code := cmd.Wait(); code != 0 {
		return fmt.Errorf("Script exited with non-zero exit status: %d: %s", code, strings.TrimSpace(h.output.String()))
	}
	return nil
}

func raw() map[string]interface{} {
	return map[string]interface{}{
		"instance_profile": "zmanim-packer",
		"staging_bucket":   "bucket",
		"image_name":       "zmanim-box",
		"image_parameter":  "/zmanim/prod/ami-id",
		"keep_images":      2,
		"image_tags":       map[string]string{"zops:version": "v1.2.3", "zops:commit": "abc123", "zops:recipe-hash": "r1"},
		"build_tags":       map[string]string{"zmanim:ami-build": "prod"},
	}
}

func newBuilder(t *testing.T, f *fakeAWS, overrides map[string]interface{}) *Builder {
	t.Helper()
	b := &Builder{clients: f.clients(), poll: time.Millisecond, publishTimeout: 200 * time.Millisecond}
	r := raw()
	for k, v := range overrides {
		r[k] = v
	}
	if _, _, err := b.Prepare(r); err != nil {
		t.Fatal(err)
	}
	return b
}

func newHook(t *testing.T, script string) *provisionHook {
	files := t.TempDir()
	os.MkdirAll(filepath.Join(files, "bin"), 0o755)
	os.WriteFile(filepath.Join(files, "bin", "zops-box"), []byte("#!/bin/sh\necho zops-box\n"), 0o755)
	return &provisionHook{filesDir: files, dst: filepath.Join(t.TempDir(), "zops"), script: script}
}

func TestConfigPrepare(t *testing.T) {
	t.Parallel()
	var c Config
	_, err := c.Prepare(map[string]interface{}{"source_ami": "img-1", "image_parameter": "ami-id", "keep_images": -1})
	for _, want := range []string{"instance_profile is required", "staging_bucket is required", "image_name is required", `source_ami "img-1"`, `image_parameter "ami-id"`, "keep_images must be 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	c = Config{}
	if _, err := c.Prepare(raw()); err != nil {
		t.Fatal(err)
	}
	if c.Region != "us-east-1" || c.SourceAMIParameter != DefaultSourceParameter || c.InstanceType != "t4g.small" || c.CommandTimeout != 30*time.Minute || *c.KeepImages != 2 {
		t.Errorf("defaults: %+v", c)
	}
}

// TestBuild runs every step against the fake: launch, provision over SSM with S3 staging,
// stop, image, publish, prune; then checks what is left in the account.
func TestBuild(t *testing.T) {
	f := newFakeAWS(t)
	// Older images of the family: o1 (oldest, runs the box), o2, o3; with keep_images=2 and
	// the new one, o2 and o3... o3 is kept (newest two: new, o3), o2 goes, o1 is in use.
	f.addImage("o1", "zmanim-box", "2026-11-01T00:00:00Z")
	f.addImage("o2", "zmanim-box", "2026-11-02T00:00:00Z")
	f.addImage("o3", "zmanim-box", "2026-11-03T00:00:00Z")
	f.addImage("x1", "someone-else", "2026-10-01T00:00:00Z")
	f.instances["i-box"] = newInstance("i-box", "o1", "running")
	f.params["/zmanim/prod/ami-id"] = "o1"

	b := newBuilder(t, f, nil)
	hook := newHook(t, "echo recipe ran on $ZOPS_DISTRO; ls "+"$(dirname $0)/../files/bin")
	ui := &recUI{}
	art, err := b.Run(context.Background(), ui, hook)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ui)
	}
	id := strings.TrimPrefix(art.Id(), "us-east-1:")
	if !strings.HasPrefix(id, "ami-") || art.BuilderId() != BuilderID {
		t.Fatalf("artifact %s %s", art.Id(), art.BuilderId())
	}
	if out := hook.output.String(); !strings.Contains(out, "recipe ran on al2023") || !strings.Contains(out, "zops-box") {
		t.Errorf("recipe output = %q", out)
	}
	if f.params["/zmanim/prod/ami-id"] != id || f.called("PutParameter /zmanim/prod/ami-id="+id+" aws:ec2:image") != 1 {
		t.Errorf("parameter = %q, calls %v", f.params["/zmanim/prod/ami-id"], f.calls)
	}
	tags := map[string]string{}
	for _, tg := range f.images[id].Tags {
		tags[*tg.Key] = *tg.Value
	}
	if tags["zops:version"] != "v1.2.3" || tags["zops:commit"] != "abc123" || tags["zops:recipe-hash"] != "r1" || tags["zops:image"] != "zmanim-box" || tags["zmanim:ami-build"] != "prod" {
		t.Errorf("image tags = %v", tags)
	}
	// Pruned: o2 only (o3 is among the newest two, o1 runs the box, x1 is another family).
	for _, want := range []string{"o1", "o3", "x1", id} {
		if f.images[want] == nil {
			t.Errorf("image %s was deleted", want)
		}
	}
	if f.images["o2"] != nil {
		t.Error("o2 not pruned")
	}
	assertCleanAccount(t, f, []string{"i-box=running"})
}

func newInstance(id, image, state string) *ec2typesInstance { return mkInstance(id, image, state) }

// assertCleanAccount: only the listed instances live, no staged object is left.
func assertCleanAccount(t *testing.T, f *fakeAWS, live []string) {
	t.Helper()
	if got := strings.Join(f.liveInstances(), ","); got != strings.Join(live, ",") {
		t.Errorf("live instances = %q, want %q", got, strings.Join(live, ","))
	}
	if keys := f.objectKeys(); len(keys) > 0 {
		t.Errorf("staged objects left in S3: %v", keys)
	}
}

// TestBuildFailingRecipe: the recipe fails half-way. The build fails with the script's
// output; the instance is terminated, staged objects deleted, no image made, nothing published.
func TestBuildFailingRecipe(t *testing.T) {
	f := newFakeAWS(t)
	b := newBuilder(t, f, nil)
	hook := newHook(t, "echo 'recipe: 10-packages.sh failed: No match for argument: postgis34_16' >&2; exit 1")
	ui := &recUI{}
	_, err := b.Run(context.Background(), ui, hook)
	if err == nil || !strings.Contains(err.Error(), "postgis34_16") || !strings.Contains(err.Error(), "exit status: 1") {
		t.Fatalf("err = %v", err)
	}
	if f.called("CreateImage") != 0 || f.called("PutParameter") != 0 {
		t.Errorf("a failed build made an image or published: %v", f.calls)
	}
	assertCleanAccount(t, f, nil)
}

// TestUnknownBaseImage: nothing is launched.
func TestUnknownBaseImage(t *testing.T) {
	for _, tt := range []struct {
		name string
		over map[string]interface{}
		want string
	}{
		{"parameter", map[string]interface{}{"source_ami_parameter": "/aws/service/ami-amazon-linux-latest/al2099-arm64"}, "unknown base image: SSM parameter /aws/service/ami-amazon-linux-latest/al2099-arm64 does not exist"},
		{"image id", map[string]interface{}{"source_ami": "ami-gone"}, "unknown base image ami-gone"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAWS(t)
			b := newBuilder(t, f, tt.over)
			_, err := b.Run(context.Background(), &recUI{}, newHook(t, "true"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if f.called("RunInstances") != 0 {
				t.Error("launched an instance from an unknown image")
			}
		})
	}
}

// TestPublishRejected: SSM accepts PutParameter but never shows the value (aws:ec2:image is
// validated asynchronously). The build fails, the new image is deregistered with its
// snapshots, the instance terminated, the parameter still names the old image.
func TestPublishRejected(t *testing.T) {
	f := newFakeAWS(t)
	f.rejectImageParameter = true
	f.params["/zmanim/prod/ami-id"] = "ami-old"
	b := newBuilder(t, f, nil)
	ui := &recUI{}
	_, err := b.Run(context.Background(), ui, newHook(t, "true"))
	if err == nil || !strings.Contains(err.Error(), "rejected the aws:ec2:image value asynchronously") {
		t.Fatalf("err = %v", err)
	}
	if f.called("DeregisterImage ami-") != 1 {
		t.Errorf("image of the failed build not deregistered: %v", f.calls)
	}
	if f.params["/zmanim/prod/ami-id"] != "ami-old" {
		t.Errorf("parameter = %q", f.params["/zmanim/prod/ami-id"])
	}
	assertCleanAccount(t, f, nil)
}

// TestCancelWhileProvisioning: an interrupt mid-recipe still terminates the instance.
func TestCancelWhileProvisioning(t *testing.T) {
	f := newFakeAWS(t)
	b := newBuilder(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err := b.Run(ctx, &recUI{}, newHook(t, "sleep 2"))
	if err == nil {
		t.Fatal("cancelled build succeeded")
	}
	time.Sleep(2 * time.Second) // let the local "instance" script end before checking S3
	if f.called("CreateImage") != 0 {
		t.Error("cancelled build made an image")
	}
	if got := f.liveInstances(); len(got) != 0 {
		t.Errorf("instances left: %v", got)
	}
}

// TestStepCleanups runs each resource-making step alone and checks its Cleanup.
func TestStepCleanups(t *testing.T) {
	f := newFakeAWS(t)
	b := newBuilder(t, f, nil)
	state := new(multistep.BasicStateBag)
	state.Put(keyConfig, &b.config)
	state.Put(keyClients, f.clients())
	state.Put(keyUI, packersdk.Ui(&recUI{}))
	state.Put(keySourceImage, "ami-base")
	ctx := context.Background()

	launch := &stepLaunchInstance{poll: time.Millisecond}
	if launch.Run(ctx, state) != multistep.ActionContinue {
		t.Fatal(state.Get(keyError))
	}
	conn := &stepConnectSSM{poll: time.Millisecond}
	conn.Run(ctx, state)
	comm := state.Get(keyComm).(*Communicator)
	if err := comm.Upload("/dev/null", strings.NewReader("x"), nil); err != nil {
		t.Fatal(err)
	}
	if len(f.objectKeys()) == 0 {
		t.Fatal("nothing staged")
	}
	conn.Cleanup(state)
	if keys := f.objectKeys(); len(keys) > 0 {
		t.Errorf("connect cleanup left %v", keys)
	}
	(&stepStopInstance{poll: time.Millisecond}).Run(ctx, state)
	img := &stepCreateImage{poll: time.Millisecond}
	if img.Run(ctx, state) != multistep.ActionContinue {
		t.Fatal(state.Get(keyError))
	}
	img.Cleanup(state) // a build that finished keeps its image
	if f.called("DeregisterImage") != 0 {
		t.Fatal("cleanup of a finished build deregistered the image")
	}
	state.Put(multistep.StateHalted, true)
	img.Cleanup(state)
	if f.called("DeregisterImage") != 1 {
		t.Error("cleanup of a failed build kept the image")
	}
	launch.Cleanup(state)
	if got := f.liveInstances(); len(got) != 0 {
		t.Errorf("launch cleanup left %v", got)
	}
}
