package cost

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// Estimate is the answer to the budget: every variant priced, the one the configuration
// selects, and the what-if loads.
type Estimate struct {
	Prices  *Prices
	Usage   Usage
	Budget  float64
	Results []*Result // Variants() order; Results[0] is on-demand
	// Selected indexes Results: the variant the budget gate checks.
	Selected int
	// SelectedBy says where the selection came from, for the output.
	SelectedBy string
	Traffic    Traffic // of the selected variant at the baseline
	WhatIf     []Point
	// Unverified are the price keys the estimate used whose source says "not verified".
	Unverified []string
	// Total is the selected variant's total (what the gate checks).
	Total float64
}

// Point prices a multiple of the baseline traffic.
type Point struct {
	Factor, OnDemandUSD, SelectedUSD float64
}

// Input is what an estimate needs.
type Input struct {
	Templates []Template
	Prices    *Prices
	Usage     Usage
	Buckets   BucketNames
	Budget    float64
	// Variant selects the variant the gate checks ("" is on-demand); SelectedBy names where.
	Variant, SelectedBy string
	// WhatIf are traffic multiples priced besides the baseline (e.g. 5, 20).
	WhatIf []float64
}

// ErrVariant is returned (wrapped) for an unknown budget.variant.
var ErrVariant = errors.New("unknown cost variant")

// InputFor builds the input for env: usage from its configuration, buckets, budget and the
// selected variant (budget.variant), with the 5x and 20x what-ifs.
func InputFor(ts []Template, p *Prices, env *config.Env) (Input, error) {
	u, err := UsageFor(env, p.HoursPerMonth())
	if err != nil {
		return Input{}, err
	}
	return Input{Templates: ts, Prices: p, Usage: u, Budget: env.Budget.MonthlyUSD,
		Buckets: BucketNames{Backups: env.Buckets.Backups, Releases: env.Buckets.Releases, Static: env.Buckets.Static},
		Variant: env.Budget.Variant, SelectedBy: fmt.Sprintf("budget.variant of environment %s in %s", env.Name, config.FileName),
		WhatIf: []float64{5, 20}}, nil
}

// Run prices every variant, the what-ifs, and collects the unverified prices used.
func Run(in Input) (*Estimate, error) {
	vs := Variants()
	sel := -1
	want := in.Variant
	if want == "" {
		want = OnDemand
	}
	for i, v := range vs {
		if v.Name == want {
			sel = i
		}
	}
	if sel < 0 {
		return nil, fmt.Errorf("%w %q (%s): use one of %s", ErrVariant, in.Variant, in.SelectedBy, strings.Join(VariantNames(), ", "))
	}
	e := &Estimate{Prices: in.Prices, Usage: in.Usage, Budget: in.Budget, Selected: sel, SelectedBy: in.SelectedBy}
	used := map[string]bool{}
	price := func(v Variant, u Usage) (*Result, Traffic, error) {
		l := newLookup(in.Prices)
		m := &model{ts: in.Templates, l: l, u: u, v: v, backups: in.Buckets.Backups, releases: in.Buckets.Releases, static: in.Buckets.Static}
		r, err := m.run()
		for k := range l.used {
			used[k] = true
		}
		return r, m.traffic, err
	}
	for _, v := range vs {
		r, tr, err := price(v, in.Usage)
		if err != nil {
			return nil, err
		}
		e.Results = append(e.Results, r)
		if v.Name == vs[sel].Name {
			e.Traffic = tr
		}
	}
	e.Total = e.Results[sel].Total
	for _, f := range in.WhatIf {
		u := in.Usage
		u.Factor = f
		od, _, err := price(vs[0], u)
		if err != nil {
			return nil, err
		}
		s, _, err := price(vs[sel], u)
		if err != nil {
			return nil, err
		}
		e.WhatIf = append(e.WhatIf, Point{Factor: f, OnDemandUSD: od.Total, SelectedUSD: s.Total})
	}
	for k := range used {
		if !in.Prices.Values[k].Verified() {
			e.Unverified = append(e.Unverified, k)
		}
	}
	sort.Strings(e.Unverified)
	return e, nil
}

// ErrOverBudget is returned (wrapped) when the selected variant exceeds the budget.
var ErrOverBudget = errors.New("monthly estimate exceeds the budget")

// ErrNotDeployed is returned (wrapped) when budget.variant selects a variant the templates do
// not implement.
var ErrNotDeployed = errors.New("the selected cost variant is not what the stacks deploy")

// SelectedResult is the variant the gate checks.
func (e *Estimate) SelectedResult() *Result { return e.Results[e.Selected] }

// Check returns ErrOverBudget when the selected variant exceeds the budget, naming the
// largest items and the variants that would fit.
func (e *Estimate) Check() error {
	r := e.SelectedResult()
	if len(r.Undeployed) > 0 {
		return fmt.Errorf("%w: %s prices a change the templates do not have: %s; change the stacks, or select a variant they implement with budget.variant (%s)",
			ErrNotDeployed, r.Variant.Name, strings.Join(r.Undeployed, "; "), e.SelectedBy)
	}
	if r.Total <= e.Budget {
		return nil
	}
	lines := append([]Line(nil), r.Lines...)
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].USD > lines[j].USD })
	var top []string
	for i := 0; i < len(lines) && i < 3; i++ {
		top = append(top, fmt.Sprintf("%s %.2f", lines[i].Name, lines[i].USD))
	}
	var fits []string
	for _, o := range e.Results {
		if o.Total <= e.Budget {
			fits = append(fits, fmt.Sprintf("%s (%.2f)", o.Variant.Name, o.Total))
		}
	}
	hint := "no priced variant fits: shrink the design or raise budget.monthly_usd"
	if len(fits) > 0 {
		hint = "variants that fit: " + strings.Join(fits, ", ") + "; select one with budget.variant after accepting its trade, or shrink the design"
	}
	return fmt.Errorf("%w: variant %s costs $%.2f > $%g (largest: %s); %s (%s)", ErrOverBudget, r.Variant.Name, r.Total, e.Budget, strings.Join(top, ", "), hint, config.FileName)
}

// Write prints the estimate: prices file, assumptions, derived usage, every on-demand line,
// the variants with their trades, the what-ifs, the unverified prices, the gate's verdict, and
// as the last line `cost: variant=V monthly_usd=X budget_usd=Y on_demand_usd=Z fits=B`.
func (e *Estimate) Write(w io.Writer) {
	u := e.Usage
	fmt.Fprintf(w, "cost: prices %s (%s, recorded %s, %d values)\n", e.Prices.File, e.Prices.Region, e.Prices.Recorded, len(e.Prices.Values))
	var as []string
	for _, a := range u.Assumptions() {
		as = append(as, a.Key+"="+a.Value)
	}
	fmt.Fprintf(w, "cost: assumptions (cost: in %s, each overridable):\n", config.FileName)
	writeWrapped(w, "  ", as, 110)
	fmt.Fprintf(w, "cost: baseline %.2f req/s average (%g%% of load.expected_rps %.0f): %.2fM viewer requests a month\n", u.AverageRPS(), u.AverageShare*100, u.ExpectedRPS, e.Traffic.Viewer/1e6)
	fmt.Fprintf(w, "cost: toolkit usage: WAL shipped every %s (%.0f runs), %.1f daily backups, %.1f base backups, %.1f verifies, %.0f releases, %.0f site syncs a month\n",
		u.WALInterval, u.WALRuns, u.DailyRuns, u.BaseRuns, u.VerifyRuns, u.ReleasesMonth, u.SiteSyncsMonth)
	for _, n := range e.Traffic.HealthCheckNotes {
		fmt.Fprintf(w, "cost: health checks: %s a month, each through CloudFront%s and API Gateway\n", n, map[bool]string{true: ", Origin Shield", false: ""}[e.Traffic.ShieldRequests > 0 && !e.SelectedResult().Variant.ShieldS3Only])
	}
	od := e.Results[0]
	fmt.Fprintf(w, "cost: %s, every line:\n", od.Variant.Name)
	groups := map[string]float64{}
	for _, ln := range od.Lines {
		fmt.Fprintf(w, "  %-13s %-62s %7.2f  %s\n", ln.Group, ln.Name, ln.USD, ln.Detail)
		groups[ln.Group] += ln.USD
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	var parts []string
	for _, g := range names {
		parts = append(parts, fmt.Sprintf("%s=%.2f", g, groups[g]))
	}
	fmt.Fprintf(w, "cost: %s by group %s\n", od.Variant.Name, strings.Join(parts, " "))
	fmt.Fprintf(w, "cost: variants (same architecture), monthly USD against the $%g budget:\n", e.Budget)
	for i, r := range e.Results {
		mark := " "
		if i == e.Selected {
			mark = "*"
		}
		verdict := "fits"
		if r.Total > e.Budget {
			verdict = "over"
		}
		fmt.Fprintf(w, " %s %-18s %7.2f  %-4s", mark, r.Variant.Name, r.Total, verdict)
		if i > 0 {
			fmt.Fprintf(w, "  (%+.2f)", r.Total-od.Total)
		}
		fmt.Fprintln(w)
		if i > 0 {
			for _, d := range diffLines(od.Lines, r.Lines) {
				fmt.Fprintf(w, "      %s\n", d)
			}
			fmt.Fprintf(w, "      trades: %s\n", r.Variant.Trade)
			if len(r.Undeployed) > 0 {
				fmt.Fprintf(w, "      needs stack changes: %s\n", strings.Join(r.Undeployed, "; "))
			} else if r.Variant.SavingsPlan {
				fmt.Fprintln(w, "      needs: the Savings Plan bought in the account (a purchase, not in the templates)")
			}
		}
	}
	for _, p := range e.WhatIf {
		fmt.Fprintf(w, "cost: what-if %gx traffic (%.2f req/s average): on-demand %.2f", p.Factor, u.AverageRPS()*p.Factor, p.OnDemandUSD)
		if e.Selected != 0 {
			fmt.Fprintf(w, ", %s %.2f", e.SelectedResult().Variant.Name, p.SelectedUSD)
		}
		fmt.Fprintln(w)
	}
	if len(e.Unverified) > 0 {
		fmt.Fprintf(w, "cost: %d price(s) used here are not verified against a public source (see their source in %s):\n", len(e.Unverified), e.Prices.File)
		for _, k := range e.Unverified {
			v := e.Prices.Values[k]
			fmt.Fprintf(w, "  %-40s %g %s\n", k, v.Value, v.Unit)
		}
	}
	sel := e.SelectedResult()
	if sel.Variant.SavingsPlan && len(sel.InstanceHours) == 1 && sel.Total <= e.Budget {
		for typ, h := range sel.InstanceHours {
			k := SavingsPlanKey(typ)
			if v := e.Prices.Values[k]; !v.Verified() {
				fmt.Fprintf(w, "cost: %s is not verified; the verdict below holds while it is at most $%.4f an hour (on-demand $%.4f)\n",
					k, v.Value+(e.Budget-sel.Total)/h, e.Prices.Values[InstanceKey(typ)].Value)
			}
		}
	}
	fits := sel.Total <= e.Budget && len(sel.Undeployed) == 0
	verdict := "fits"
	switch {
	case len(sel.Undeployed) > 0:
		verdict = "REFUSED: the stacks do not deploy this variant"
	case !fits:
		verdict = "does NOT fit"
	}
	odv := "fits"
	if od.Total > e.Budget {
		odv = "does not fit"
	}
	fmt.Fprintf(w, "cost: gate checks variant %s (%s): $%.2f against $%g: %s (margin $%.2f); on-demand $%.2f %s\n", sel.Variant.Name, e.SelectedBy, sel.Total, e.Budget, verdict, e.Budget-sel.Total, od.Total, odv)
	fmt.Fprintf(w, "cost: variant=%s monthly_usd=%.2f budget_usd=%g on_demand_usd=%.2f fits=%t\n", sel.Variant.Name, sel.Total, e.Budget, od.Total, fits)
}

// diffLines describes how a variant's lines differ from on-demand's.
func diffLines(base, other []Line) []string {
	var out []string
	for i := 0; i < len(base) && i < len(other); i++ {
		if base[i].Name != other[i].Name || math.Round(base[i].USD*100) != math.Round(other[i].USD*100) {
			out = append(out, fmt.Sprintf("%s %.2f -> %s %.2f", base[i].Name, base[i].USD, other[i].Name, other[i].USD))
		}
	}
	return out
}

func writeWrapped(w io.Writer, indent string, words []string, width int) {
	line := indent
	for _, wd := range words {
		if len(line)+len(wd)+1 > width && line != indent {
			fmt.Fprintln(w, line)
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += wd
	}
	if line != indent {
		fmt.Fprintln(w, line)
	}
}
