package site

import (
	"fmt"
	"io"
)

// planListLimit caps how many keys of one kind PrintPlan lists.
const planListLimit = 20

// PrintPlan writes a readable plan: counts, then the keys of each step in order.
func PrintPlan(w io.Writer, p *Plan, manifestState string) {
	fmt.Fprintf(w, "site: plan for deploy %s (%d files, %s; manifest %s)\n", p.DeployID, p.Files, humanBytes(p.Bytes), manifestState)
	fmt.Fprintf(w, "  1. upload %d assets\n", len(p.Assets))
	listUploads(w, p.Assets)
	fmt.Fprintf(w, "  2. upload %d pages\n", len(p.Pages))
	listUploads(w, p.Pages)
	fmt.Fprintf(w, "  3. record the pending invalidation, write manifest (%d unchanged files skipped, %s)\n", p.Skipped, humanBytes(p.SkippedBytes))
	fmt.Fprintf(w, "  4. invalidate %d paths (the changed pages; plus any a failed run left pending)\n", len(p.Invalidation))
	listKeys(w, p.Invalidation)
	fmt.Fprintf(w, "  5. delete %d keys past the grace period, then invalidate %d paths of the deleted pages\n", len(p.Delete), len(p.InvalidationAfterDelete))
	listKeys(w, p.Delete)
	fmt.Fprintf(w, "  kept for the grace period: %d leaving now (%.0f%% of %d live), %d waiting\n", len(p.NewlyStale), 100*p.RemoveShare, p.LiveKeys, len(p.Waiting))
	listKeys(w, p.NewlyStale)
	for _, c := range p.Conflicts {
		fmt.Fprintf(w, "  name conflict: new %s replaces old %v (removed first on filesystem-backed stores)\n", c.New, c.Old)
	}
}

func listUploads(w io.Writer, us []Upload) {
	for i, u := range us {
		if i == planListLimit {
			fmt.Fprintf(w, "     ... and %d more\n", len(us)-i)
			return
		}
		fmt.Fprintf(w, "     %-10s %s (%s, %s)\n", u.Reason, u.File.Key, humanBytes(u.File.Size), u.CacheControl)
	}
}

func listKeys(w io.Writer, keys []string) {
	for i, k := range keys {
		if i == planListLimit {
			fmt.Fprintf(w, "     ... and %d more\n", len(keys)-i)
			return
		}
		fmt.Fprintf(w, "     %s\n", k)
	}
}
