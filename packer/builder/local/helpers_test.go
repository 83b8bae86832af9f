package local

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// recUI records what the builder said.
type recUI struct {
	packersdk.BasicUi
	mu  sync.Mutex
	out bytes.Buffer
}

func newUI() *recUI { return &recUI{} }

func (u *recUI) Say(m string)     { u.add(m) }
func (u *recUI) Message(m string) { u.add(m) }
func (u *recUI) Error(m string)   { u.add("ERROR " + m) }
func (u *recUI) add(m string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.out.WriteString(m + "\n")
}
func (u *recUI) String() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.out.String()
}

func newState(t *testing.T, cfg *Config) (*multistep.BasicStateBag, *recUI) {
	t.Helper()
	ui := newUI()
	s := new(multistep.BasicStateBag)
	s.Put(keyConfig, cfg)
	s.Put(keyUI, packersdk.Ui(ui))
	return s, ui
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts, chroot)")
	}
}

// assertNothingMounted fails when anything is still mounted at or below dir.
func assertNothingMounted(t *testing.T, dir string) {
	t.Helper()
	mps, err := mountsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(mps) > 0 {
		t.Errorf("still mounted under %s: %s", dir, strings.Join(mps, ", "))
		_ = unmountAll(dir)
	}
}

func run(t *testing.T, st multistep.Step, s multistep.StateBag) multistep.StepAction {
	t.Helper()
	return st.Run(context.Background(), s)
}
