package recovery

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestRunbookFollowsTheDrill keeps migration/recovery.md and the drill together: every step the
// runbook names in brackets is a step the drill runs (so bench:recovery measures what the
// operator does), and the production steps of both losses are all in the runbook. That every
// `go tool mage` target it names exists is checked with the other runbooks
// (internal/migrate TestRunbooksCallRealTargets).
func TestRunbookFollowsTheDrill(t *testing.T) {
	b, err := os.ReadFile("../../migration/recovery.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`\[([a-zA-Z][^\]]+)\]`).FindAllStringSubmatch(doc, -1) {
		name := strings.Join(strings.Fields(m[1]), " ")
		if !slices.Contains(Steps, name) {
			t.Errorf("recovery.md names [%s], which is no step of the drill (%q)", name, Steps)
		}
		named[name] = true
	}
	for _, s := range []string{"lose the box", "box B: new box, same volume", "lose the volume", "box C: new box, blank volume", "recover from the newest backup and WAL"} {
		if !named[s] {
			t.Errorf("recovery.md does not name the drill step [%s]", s)
		}
	}
	for _, want := range []string{"mage ami:rollout", "mage backup:recover", "mage infra:deploy", "data_volume_generation", "mage bench:recovery"} {
		if !strings.Contains(doc, want) {
			t.Errorf("recovery.md lacks %q", want)
		}
	}
}
