package onbox

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/shtetl/zmanim-ops/internal/box"
)

// windowProbe is a supervisor that records what is on disk when the agent reloads, the window
// in which an agent used to die leaving an unproven `current`.
type windowProbe struct {
	Supervisor
	a       *Agent
	pending *Pending
	current string
}

func (w *windowProbe) Reload(ctx context.Context) (box.Process, error) {
	w.pending, _ = w.a.readPending()
	w.current, _ = w.a.Current()
	return w.Supervisor.Reload(ctx)
}

// Finding 8 (issue 14): `current` was swapped before the reload and the health gate, with no
// record; an agent killed in between left an unproven version for the next crash restart or
// boot to start. Now the pending marker is on disk for the whole window, and the supervisor's
// next start goes back to the proven version.
func TestAKilledDeploysSwitchIsUndoneByTheNextStart(t *testing.T) {
	ctx := context.Background()
	h := newHost(t)
	publish(t, h.st, "v1")
	probe := &windowProbe{Supervisor: h.agent.Supervisor, a: h.agent}
	h.agent.Supervisor = probe
	if _, err := h.agent.Deploy(ctx, "v1"); err != nil {
		t.Fatal(err)
	}
	if probe.pending == nil || probe.pending.Version != "v1" || probe.pending.Previous != "v0" || probe.current != "v1" {
		t.Fatalf("during the reload: pending %+v, current %q; want the marker for v1 over v0", probe.pending, probe.current)
	}
	if p, _ := h.agent.readPending(); p != nil {
		t.Fatalf("marker left after a proven deploy: %+v", p)
	}

	// The state an agent killed in that window leaves (marker, current on the new version,
	// its flock gone with it), for v2.
	publish(t, h.st, "v2")
	must(t, h.agent.Install(ctx, "v2"))
	must(t, h.agent.writePending(Pending{Version: "v2", Previous: "v1", PID: 999999}))
	must(t, h.agent.swap("v2"))
	// The API crashes: the supervisor restarts it and must start v1, not the unproven v2.
	pid := h.sup.Status().Active.PID
	must(t, syscall.Kill(pid, syscall.SIGKILL))
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := h.sup.Status()
		if st.Active != nil && st.Active.PID != pid {
			if st.Active.Version != "v1" {
				t.Fatalf("the crash restart started %s, want the proven v1", st.Active.Version)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no restart: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if cur, _ := h.agent.Current(); cur != "v1" {
		t.Fatalf("current -> %s after recovery, want v1", cur)
	}
	if p, _ := h.agent.readPending(); p != nil {
		t.Fatalf("marker left after recovery: %+v", p)
	}
	if h.serving() != "v1" {
		t.Fatalf("serving %s", h.serving())
	}
}

// `zops-box deploy` is one at a time on a box.
func TestOneDeployAtATimeOnTheBox(t *testing.T) {
	h := newHost(t)
	publish(t, h.st, "v1")
	unlock, err := h.agent.lockDeploy()
	must(t, err)
	if _, err := h.agent.Deploy(context.Background(), "v1"); !errors.Is(err, ErrBusy) {
		t.Fatalf("deploy while another runs: %v, want ErrBusy", err)
	}
	unlock()
	if _, err := h.agent.Deploy(context.Background(), "v1"); err != nil {
		t.Fatalf("deploy after the other finished: %v", err)
	}
}

// A release whose lock was taken over carries an older fencing token: the box refuses it.
func TestOlderFencingTokenIsRefused(t *testing.T) {
	ctx := context.Background()
	h := newHost(t)
	publish(t, h.st, "v1")
	publish(t, h.st, "v2")
	h.agent.Fence = 7
	if _, err := h.agent.Deploy(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	h.agent.Fence = 6
	if _, err := h.agent.Deploy(ctx, "v1"); !errors.Is(err, ErrFenced) {
		t.Fatalf("older token: %v, want ErrFenced", err)
	}
	if cur, _ := h.agent.Current(); cur != "v2" || h.serving() != "v2" {
		t.Fatalf("the refused deploy changed the box: current %s", cur)
	}
	b, _ := os.ReadFile(h.agent.fencePath())
	if string(b) != "7\n" {
		t.Fatalf("fence file %q", b)
	}
}
