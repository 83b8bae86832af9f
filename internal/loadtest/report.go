package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// DefaultReportDir is where reports are written, relative to the repository root.
const DefaultReportDir = "reports/loadtest"

// Report is a run with its verdict, ready to render.
type Report struct {
	Scenario string
	Label    string // release version or other tag, part of the directory name
	Result   *Result
	Outcomes []Outcome
	Judged   []string // stages the thresholds were judged on (all when empty)
	Skipped  []string // endpoints left out of the mix, with the reason
	// MinSamples is the fewest requests a judged series needed (0: no minimum).
	MinSamples uint64
	// Previous is the last earlier run of the same scenario, when there is one.
	Previous    *Result
	PreviousDir string
}

// Row is one region and class of the latency table.
type Row struct {
	Region, Class         string
	Requests, Failed      uint64
	Hits                  uint64
	P50, P95, P99, TTFB95 time.Duration
	PrevP95               time.Duration // zero when there is no previous run
	Verdict               string        // pass, FAIL, or "" when no threshold applies
	Target                string        // the p95 threshold text, when there is one
}

// Rows computes the latency table over the judged stages.
func (rp *Report) Rows() []Row {
	var prev map[[2]string]*Series
	if rp.Previous != nil {
		prev = map[[2]string]*Series{}
		for _, s := range rp.Previous.Totals(rp.Judged...) {
			prev[[2]string{s.Region, s.Class}] = s
		}
	}
	var rows []Row
	for _, s := range rp.Result.Totals(rp.Judged...) {
		lh, th := s.LatencyHistogram(), s.TTFBHistogram()
		r := Row{Region: s.Region, Class: s.Class, Requests: s.Requests, Failed: s.Failed, Hits: s.Hits,
			P50: lh.Quantile(0.5), P95: lh.Quantile(0.95), P99: lh.Quantile(0.99), TTFB95: th.Quantile(0.95)}
		if p := prev[[2]string{s.Region, s.Class}]; p != nil {
			r.PrevP95 = p.LatencyHistogram().Quantile(0.95)
		}
		for _, o := range rp.Outcomes {
			if o.Region != s.Region || o.Class != s.Class || o.NoData {
				continue
			}
			if m := o.Threshold.Metric; (m == "p95" || m == "ttfb_p95") && r.Target == "" {
				r.Target = o.Threshold.Metric + " " + o.Threshold.Op + " " + fmtMs(o.Threshold.Value)
			}
			if o.TooFew {
				r.Verdict = "FAIL (too few samples)"
			} else if !o.Pass && !strings.HasPrefix(r.Verdict, "FAIL") {
				r.Verdict = "FAIL"
			} else if r.Verdict == "" {
				r.Verdict = "pass"
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func fmtMs(v float64) string {
	return trimFloat(v) + "ms"
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0")
}

func ms(d time.Duration) string { return trimFloat(float64(d) / float64(time.Millisecond)) }

func pct(n, d uint64) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(d))
}

// Passed reports the verdict.
func (rp *Report) Passed() bool { return !Failed(rp.Outcomes) }

func (rp *Report) verdictLine() string {
	failed, nodata, toofew := 0, 0, 0
	for _, o := range rp.Outcomes {
		switch {
		case o.NoData:
			nodata++
		case !o.Pass:
			failed++
			if o.TooFew {
				toofew++
			}
		}
	}
	judged := len(rp.Outcomes) - nodata
	v := fmt.Sprintf("**PASS**: all %d threshold checks passed", judged)
	if failed > 0 {
		v = fmt.Sprintf("**FAIL**: %d of %d threshold checks failed", failed, judged)
	}
	if toofew > 0 {
		v += fmt.Sprintf(", %d of them on fewer than %d samples (not enough samples)", toofew, rp.MinSamples)
	}
	if rp.MinSamples > 0 {
		v += fmt.Sprintf("; every judged region and class needs at least %d requests", rp.MinSamples)
	}
	if nodata > 0 {
		v += fmt.Sprintf(" (%d without data)", nodata)
	}
	return v
}

// Markdown writes the report as Markdown.
func (rp *Report) Markdown(w io.Writer) error {
	r := rp.Result
	var b strings.Builder
	fmt.Fprintf(&b, "# Load test `%s`", rp.Scenario)
	if rp.Label != "" {
		fmt.Fprintf(&b, " (%s)", rp.Label)
	}
	fmt.Fprintf(&b, " — %s\n\n", r.Started.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Target `%s`, regions %s, %s.", r.Target, strings.Join(r.Regions, ", "), r.Duration.Round(time.Second))
	if len(rp.Judged) > 0 {
		fmt.Fprintf(&b, " Thresholds judged on stage %s.", strings.Join(rp.Judged, ", "))
	}
	b.WriteString("\n\n" + rp.verdictLine() + "\n\n")
	for _, s := range rp.Skipped {
		fmt.Fprintf(&b, "> Not in the mix: %s\n\n", s)
	}

	b.WriteString("## Stages\n\n| stage | rate req/s | duration | scheduled | dropped | failed |\n|---|---:|---:|---:|---:|---:|\n")
	for _, ph := range r.Phases {
		rate := trimFloat(ph.StartRate)
		if ph.EndRate != ph.StartRate {
			rate += "→" + trimFloat(ph.EndRate)
		}
		var failed uint64
		for _, s := range ph.Series {
			failed += s.Failed
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d |\n", ph.Name, rate, ph.Planned, ph.Scheduled, ph.Dropped, failed)
	}

	b.WriteString("\n## Latency by region and class\n\n")
	prevCol := rp.Previous != nil
	b.WriteString("| region | class | requests | p50 ms | p95 ms | p99 ms | TTFB p95 ms | error rate | hit ratio | p95 target | all checks |")
	if prevCol {
		b.WriteString(" p95 previous | Δ p95 |")
	}
	b.WriteString("\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
	if prevCol {
		b.WriteString("---:|---:|")
	}
	b.WriteString("\n")
	for _, row := range rp.Rows() {
		verdict := row.Verdict
		if verdict == "" {
			verdict = "-"
		}
		target := row.Target
		if target == "" {
			target = "-"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |", row.Region, row.Class, row.Requests,
			ms(row.P50), ms(row.P95), ms(row.P99), ms(row.TTFB95), pct(row.Failed, row.Requests), pct(row.Hits, row.Requests), target, verdict)
		if prevCol {
			if row.PrevP95 > 0 {
				d := float64(row.P95-row.PrevP95) / float64(row.PrevP95) * 100
				fmt.Fprintf(&b, " %s | %+.1f%% |", ms(row.PrevP95), d)
			} else {
				b.WriteString(" - | - |")
			}
		}
		b.WriteString("\n")
	}

	b.WriteString("\n## Cache hit ratio (cacheable API requests)\n\n| region | requests | hit ratio | edge | shield | origin |\n|---|---:|---:|---:|---:|---:|\n")
	for _, reg := range r.Regions {
		var edge, shield, origin uint64
		for _, s := range r.Totals(rp.Judged...) {
			if s.Region != reg {
				continue
			}
			switch s.Class {
			case "edge_hit":
				edge += s.Requests
			case "shield_hit":
				shield += s.Requests
			case "uncached":
				origin += s.Requests
			}
		}
		n := edge + shield + origin
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |\n", reg, n, pct(edge+shield, n), pct(edge, n), pct(shield, n), pct(origin, n))
	}

	b.WriteString("\n## Thresholds\n\n| threshold | region | class | value | result |\n|---|---|---|---:|---|\n")
	for _, o := range rp.Outcomes {
		res, val := "pass", formatValue(o)
		switch {
		case o.NoData:
			res, val = "no data", "-"
		case o.TooFew:
			res = "**FAIL**: " + strings.TrimPrefix(o.Verdict(rp.MinSamples), "FAIL: ")
			if o.Samples == 0 {
				val = "-"
			}
		case !o.Pass:
			res = "**FAIL**"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", o.Text, o.Region, o.Class, val, res)
	}

	var errs []string
	for _, ph := range r.Phases {
		for _, e := range ph.Errors {
			errs = append(errs, fmt.Sprintf("| %s | %s | %d |", ph.Name, e.Kind, e.Count))
		}
	}
	if len(errs) > 0 {
		b.WriteString("\n## Request errors (no response)\n\n| stage | error | count |\n|---|---|---:|\n")
		b.WriteString(strings.Join(errs, "\n") + "\n")
	}
	if rp.PreviousDir != "" {
		fmt.Fprintf(&b, "\nCompared with the previous `%s` run: `%s`.\n", rp.Scenario, rp.PreviousDir)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatValue(o Outcome) string {
	switch {
	case strings.HasPrefix(o.Threshold.Metric, "p"), strings.HasPrefix(o.Threshold.Metric, "ttfb"),
		o.Threshold.Metric == "max", o.Threshold.Metric == "mean":
		return fmtMs(o.Value)
	case strings.HasSuffix(o.Threshold.Metric, "rate"), o.Threshold.Metric == "hit_ratio":
		return fmt.Sprintf("%.2f%%", o.Value*100)
	}
	return trimFloat(o.Value)
}

// HTML writes a self-contained page: the tables and inline SVG charts, no external assets.
func (rp *Report) HTML(w io.Writer) error {
	var md strings.Builder
	if err := rp.Markdown(&md); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
	fmt.Fprintf(&b, "<title>Load test %s %s</title>\n", html.EscapeString(rp.Scenario), rp.Result.Started.UTC().Format(time.RFC3339))
	b.WriteString(`<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,td:nth-child(2),th{text-align:left}.fail{color:#b00;font-weight:bold}.pass{color:#070}
svg text{font-size:12px;font-family:system-ui,sans-serif}
</style></head><body>
`)
	b.WriteString(mdToHTML(md.String()))
	b.WriteString("<h2>Chart: latency by region and class</h2>\n")
	b.WriteString(rp.barChart())
	if len(rp.Result.Windows) > 1 {
		b.WriteString("<h2>Chart: p95 latency and requests over time</h2>\n")
		b.WriteString(rp.timeChart())
	}
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// mdToHTML renders the small Markdown subset the report uses (headings, tables, paragraphs,
// quotes, **bold**, `code`).
func mdToHTML(md string) string {
	var b strings.Builder
	inline := func(s string) string {
		s = html.EscapeString(s)
		for _, p := range [][2]string{{"**", "strong"}, {"`", "code"}} {
			for {
				i := strings.Index(s, p[0])
				if i < 0 {
					break
				}
				j := strings.Index(s[i+len(p[0]):], p[0])
				if j < 0 {
					break
				}
				inner := s[i+len(p[0]) : i+len(p[0])+j]
				cls := ""
				if p[1] == "strong" && strings.HasPrefix(inner, "FAIL") {
					cls = ` class="fail"`
				} else if p[1] == "strong" && strings.HasPrefix(inner, "PASS") {
					cls = ` class="pass"`
				}
				s = s[:i] + "<" + p[1] + cls + ">" + inner + "</" + p[1] + ">" + s[i+2*len(p[0])+j:]
			}
		}
		return s
	}
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "## "):
			b.WriteString("<h2>" + inline(l[3:]) + "</h2>\n")
		case strings.HasPrefix(l, "# "):
			b.WriteString("<h1>" + inline(l[2:]) + "</h1>\n")
		case strings.HasPrefix(l, "> "):
			b.WriteString("<blockquote>" + inline(l[2:]) + "</blockquote>\n")
		case strings.HasPrefix(l, "|"):
			b.WriteString("<table>\n")
			head := true
			for ; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
				cells := strings.Split(strings.Trim(lines[i], "|"), "|")
				if strings.HasPrefix(strings.TrimSpace(cells[0]), "---") {
					continue
				}
				tag := "td"
				if head {
					tag = "th"
				}
				b.WriteString("<tr>")
				for _, c := range cells {
					c = strings.TrimSpace(c)
					cls := ""
					if c == "FAIL" || c == "**FAIL**" {
						cls = ` class="fail"`
					} else if c == "pass" {
						cls = ` class="pass"`
					}
					b.WriteString("<" + tag + cls + ">" + inline(c) + "</" + tag + ">")
				}
				b.WriteString("</tr>\n")
				head = false
			}
			i--
			b.WriteString("</table>\n")
		case strings.TrimSpace(l) == "":
		default:
			b.WriteString("<p>" + inline(l) + "</p>\n")
		}
	}
	return b.String()
}

// targetFor returns the p95 latency target (ms) of a region and class, 0 when none.
func (rp *Report) targetFor(region, class string) float64 {
	for _, o := range rp.Outcomes {
		if o.Region == region && o.Class == class && (o.Threshold.Metric == "p95" || o.Threshold.Metric == "ttfb_p95") && o.Threshold.Op[0] == '<' {
			return o.Threshold.Value
		}
	}
	return 0
}

func (rp *Report) barChart() string {
	rows := rp.Rows()
	if len(rows) == 0 {
		return "<p>No data.</p>\n"
	}
	maxV := 1.0
	for _, r := range rows {
		maxV = math.Max(maxV, float64(r.P99)/1e6)
		maxV = math.Max(maxV, rp.targetFor(r.Region, r.Class))
	}
	maxV = niceCeil(maxV)
	const left, width, rowH = 190, 700, 42
	h := len(rows)*rowH + 56
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="p50, p95 and p99 latency per region and class">`+"\n", left+width+40, h)
	x := func(v float64) float64 { return left + v/maxV*width }
	for i := 0; i <= 5; i++ {
		v := maxV * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%.1f" y1="10" x2="%.1f" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" text-anchor="middle">%s ms</text>`+"\n", x(v), x(v), h-36, x(v), h-20, trimFloat(v))
	}
	colors := []string{"#9ecae1", "#3182bd", "#08519c"}
	for i, r := range rows {
		y := 10 + i*rowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s %s</text>`+"\n", left-8, y+22, html.EscapeString(r.Region), html.EscapeString(r.Class))
		for j, v := range []time.Duration{r.P50, r.P95, r.P99} {
			vm := float64(v) / 1e6
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="10" fill="%s"><title>p%s %s ms</title></rect>`+"\n", left, y+4+j*11, x(vm)-left, colors[j], []string{"50", "95", "99"}[j], ms(v))
		}
		if t := rp.targetFor(r.Region, r.Class); t > 0 {
			stroke := "#070"
			if r.Verdict == "FAIL" {
				stroke = "#b00"
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="4 2"><title>target %s ms</title></line>`+"\n", x(t), y, x(t), y+38, stroke, trimFloat(t))
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d">bars: p50 / p95 / p99; dashed line: p95 target (green met, red missed)</text>`+"\n", left, h-2)
	b.WriteString("</svg>\n")
	return b.String()
}

func (rp *Report) timeChart() string {
	ws := rp.Result.Windows
	maxV, maxN := 1.0, uint64(1)
	for _, w := range ws {
		maxV = math.Max(maxV, float64(w.P95)/1e6)
		if w.Requests > maxN {
			maxN = w.Requests
		}
	}
	peakN := maxN
	maxV = niceCeil(maxV)
	// Requests get their own scale, on the right-hand axis: a count per window shares no
	// unit with milliseconds.
	maxN = uint64(niceCeil(float64(maxN)))
	const left, width, height = 60, 800, 240
	x := func(i int) float64 { return left + float64(i)*width/float64(len(ws)-1) }
	y := func(v float64) float64 { return 10 + height - v/maxV*height }
	yn := func(n uint64) float64 { return 10 + height - float64(n)/float64(maxN)*height }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="p95 latency and requests per window">`+"\n", left+width+80, height+60)
	for i := 0; i <= 4; i++ {
		v := maxV * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s ms</text>`+"\n", left, y(v), left+width, y(v), left-4, y(v)+4, trimFloat(v))
		n := maxN * uint64(i) / 4
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#777">%d req</text>`+"\n", left+width+4, yn(n)+4, n)
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="10" x2="%d" y2="%d" stroke="#08519c"/><line x1="%d" y1="10" x2="%d" y2="%d" stroke="#bbb"/>`+"\n",
		left, left, 10+height, left+width, left+width, 10+height)
	var lat, req, fail strings.Builder
	for i, w := range ws {
		fmt.Fprintf(&lat, "%.1f,%.1f ", x(i), y(float64(w.P95)/1e6))
		fmt.Fprintf(&req, "%.1f,%.1f ", x(i), yn(w.Requests))
		if w.Failed > 0 {
			fmt.Fprintf(&fail, `<circle cx="%.1f" cy="%.1f" r="3" fill="#b00"><title>%d failed</title></circle>`, x(i), yn(w.Failed), w.Failed)
		}
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#bbb" stroke-width="1.5" points="%s"/>`+"\n", strings.TrimSpace(req.String()))
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#08519c" stroke-width="2" points="%s"/>`+"\n", strings.TrimSpace(lat.String()))
	b.WriteString(fail.String())
	step := ws[1].Start.Sub(ws[0].Start)
	fmt.Fprintf(&b, "\n"+`<text x="%d" y="%d">blue: p95 latency per %s window (left axis, ms); grey: requests per window (right axis, peak %d); red: failed requests (right axis)</text>`+"\n", left, height+45, step, peakN)
	b.WriteString("</svg>\n")
	return b.String()
}

func niceCeil(v float64) float64 {
	for _, s := range []float64{1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000} {
		if v <= s {
			return s
		}
	}
	return math.Ceil(v/10000) * 10000
}

// ReportDirName is the directory name of a run: UTC start time, scenario and label.
func ReportDirName(started time.Time, scenario, label string) string {
	n := started.UTC().Format("20060102T150405Z") + "-" + scenario
	if label != "" {
		n += "-" + sanitize(label)
	}
	return n
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

// FindPrevious returns the latest run of the same scenario in root older than name.
func FindPrevious(root, scenario, name string) (*Result, string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("list previous reports: %w", err)
	}
	var cands []string
	for _, e := range entries {
		n := e.Name()
		const stamp = len("20060102T150405Z")
		if e.IsDir() && n < name && len(n) > stamp && strings.HasPrefix(n[stamp:], "-"+scenario) &&
			(len(n) == stamp+1+len(scenario) || n[stamp+1+len(scenario)] == '-') {
			cands = append(cands, n)
		}
	}
	sort.Strings(cands)
	for i := len(cands) - 1; i >= 0; i-- {
		b, err := os.ReadFile(filepath.Join(root, cands[i], "result.json"))
		if err != nil {
			continue
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			continue
		}
		return &r, filepath.Join(root, cands[i]), nil
	}
	return nil, "", nil
}

// Write stores result.json, outcomes.json, report.md and report.html in dir.
func (rp *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	res, err := json.MarshalIndent(rp.Result, "", " ")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	outs, err := json.MarshalIndent(rp.Outcomes, "", " ")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	var md, page strings.Builder
	if err := rp.Markdown(&md); err != nil {
		return err
	}
	if err := rp.HTML(&page); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"result.json": res, "outcomes.json": outs,
		"report.md": []byte(md.String()), "report.html": []byte(page.String())} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("write report %s: %w", name, err)
		}
	}
	return nil
}
