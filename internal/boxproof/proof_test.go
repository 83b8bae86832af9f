package boxproof

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/fakeec2"
	"github.com/shtetl/zmanim-ops/internal/firstboot"
)

// The instance file the proof writes is one first boot accepts (as the CDK user data's is).
func TestInstanceFileReadByFirstBoot(t *testing.T) {
	env, err := config.LoadWith(config.Options{Env: "local"})
	if err != nil {
		t.Fatal(err)
	}
	p := &proof{Account: &fakeec2.Account{Prefix: "/zmanim/boxproof/x"}, o: Options{Env: env}, loop: "/dev/loop7"}
	f := filepath.Join(t.TempDir(), "instance.env")
	os.WriteFile(f, []byte(p.instanceFile()), 0o644)
	kv, err := firstboot.ReadInstanceFile(f)
	if err != nil {
		t.Fatal(err)
	}
	in, err := firstboot.InputsFrom(kv)
	if err != nil || in.Device != "/dev/loop7" || in.SSMPrefix != "/zmanim/boxproof/x" {
		t.Fatalf("%+v %v", in, err)
	}
}
