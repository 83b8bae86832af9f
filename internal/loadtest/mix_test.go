package loadtest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func loadDefaultScenarios(t *testing.T) *ScenarioFile {
	t.Helper()
	p, err := RepoPath(DefaultScenariosFile)
	if err != nil {
		t.Fatal(err)
	}
	f, err := LoadScenarioFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestMixHotRatioAndRegions(t *testing.T) {
	t.Parallel()
	f := loadDefaultScenarios(t)
	f.Mix.ShieldRatio = 0 // the relay's keys repeat once per region (TestMixShieldRelay)
	for _, ratio := range []float64{0, 0.5, 0.9, 1} {
		m, err := NewMix(f.Mix, MixOptions{Target: "http://edge", Regions: []string{"us-east-1", "il-central-1"},
			RegionHeader: true, Token: "tok", HotRatio: ratio})
		if err != nil {
			t.Fatal(err)
		}
		const n = 20000
		urls := map[string]int{}
		perRegion := map[string]int{}
		kinds := map[Kind]int{}
		var r Request
		for i := uint64(1); i <= n; i++ {
			m.Next(i, &r)
			if !strings.HasPrefix(r.URL, "http://edge/") {
				t.Fatalf("url %q", r.URL)
			}
			urls[r.URL]++
			perRegion[r.Header.Get(RegionHeader)]++
			kinds[r.Kind]++
			if r.Kind == KindPrivate && r.Header.Get("Authorization") != "Bearer tok" {
				t.Fatal("private request without token")
			}
			if r.Kind != KindPrivate && r.Header.Get("Authorization") != "" {
				t.Fatal("public request carries the token")
			}
		}
		if perRegion["us-east-1"] != n/2 || perRegion["il-central-1"] != n/2 {
			t.Errorf("ratio %v: regions %v, want an even split", ratio, perRegion)
		}
		// Repeated URLs (second and later requests for a URL) approximate the hit ratio the
		// edge can reach: parameterless endpoints (25% of weight) always repeat.
		repeats := 0
		for _, c := range urls {
			repeats += c - 1
		}
		got := float64(repeats) / n
		want := 0.25 + 0.75*ratio
		if got < want-0.03 || got > want+0.03 {
			t.Errorf("ratio %v: repeated share %.3f, want %.3f ± 0.03", ratio, got, want)
		}
		if kinds[KindPrivate] == 0 || kinds[KindFrontend] == 0 || kinds[KindAPI] == 0 {
			t.Errorf("kinds %v: every kind must appear", kinds)
		}
	}
}

func TestMixIsDeterministicAndSkipsPrivateWithoutToken(t *testing.T) {
	t.Parallel()
	f := loadDefaultScenarios(t)
	a, err := NewMix(f.Mix, MixOptions{Target: "http://e", HotRatio: -1})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewMix(f.Mix, MixOptions{Target: "http://e", HotRatio: -1})
	var ra, rb Request
	for i := uint64(0); i < 1000; i++ {
		a.Next(i, &ra)
		b.Next(i, &rb)
		if ra.URL != rb.URL {
			t.Fatalf("iteration %d: %q != %q", i, ra.URL, rb.URL)
		}
		if ra.Kind == KindPrivate {
			t.Fatal("private endpoint used without a token")
		}
		if ra.Header.Get(RegionHeader) != "" {
			t.Fatal("region header sent although disabled")
		}
	}
	if len(a.Skipped) != 1 || a.Skipped[0] != "publisher-profile" {
		t.Errorf("skipped = %v", a.Skipped)
	}
}

func TestMixRejectsBadSpec(t *testing.T) {
	t.Parallel()
	_, err := NewMix(MixSpec{HotRatio: 2, HotDate: "tomorrow", Endpoints: []EndpointSpec{
		{Name: "x", Path: "api/{nope}", Kind: "rpc", Weight: 1}}}, MixOptions{HotRatio: -1})
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"hot ratio 2", "hot_set", "cities", "hot_date", "kind \"rpc\"", "must start with /", "{nope}"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestScenarioStages(t *testing.T) {
	t.Parallel()
	f := loadDefaultScenarios(t)
	for _, name := range []string{"smoke", "load", "ramp", "spike", "soak"} {
		if _, err := f.Scenario(name); err != nil {
			t.Errorf("scenario %s missing: %v", name, err)
		}
	}
	st, err := f.Stages("load", Load{50, 10}, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[1].StartRate != 500 || st[1].EndRate != 500 || st[1].Duration != 2*time.Minute || st[0].Duration != 10*time.Second {
		t.Errorf("load stages = %+v: want 10x of 50 = 500/s, the main stage stretched to 2m", st)
	}
	st, _ = f.Stages("ramp", Load{50, 10}, 0)
	if st[0].StartRate != 0 || st[0].EndRate != 500 {
		t.Errorf("ramp = %+v", st[0])
	}
	if _, err := f.Stages("stress", Load{50, 10}, 0); !errors.Is(err, ErrUnknownScenario) || !strings.Contains(err.Error(), "smoke") {
		t.Errorf("err = %v", err)
	}
	bad := &ScenarioFile{Scenarios: map[string]ScenarioSpec{"b": {Stages: []StageSpec{{Name: "s", Duration: "soon"}}}}}
	if _, err := bad.Stages("b", Load{50, 10}, 0); err == nil || !strings.Contains(err.Error(), "exactly one of rate") || !strings.Contains(err.Error(), "duration \"soon\"") {
		t.Errorf("err = %v", err)
	}
}

func TestRegionProfiles(t *testing.T) {
	t.Parallel()
	p, err := RepoPath(DefaultRegionsFile)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := LoadRegionProfiles(p)
	if err != nil {
		t.Fatal(err)
	}
	us, err := rp.Lookup("us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if us.Added(TierEdge) != us.UserToEdge.RTT() || us.Added(TierOrigin) <= us.Added(TierShield) || us.Added(TierShield) <= us.Added(TierEdge) {
		t.Errorf("added delays not increasing: %v %v %v", us.Added(TierEdge), us.Added(TierShield), us.Added(TierOrigin))
	}
	if !us.PopMatches("IAD89-C1") || us.PopMatches("TLV50-C1") {
		t.Error("pop matching")
	}
	if d := us.UserToEdge.Delay(0); d != 7*time.Millisecond {
		t.Errorf("Delay(0) = %v, want rtt-jitter = 7ms", d)
	}
	if _, err := rp.Select("us-east-1, mars-north-1"); !errors.Is(err, ErrUnknownRegion) || !strings.Contains(err.Error(), "il-central-1") {
		t.Errorf("err = %v, want unknown region listing the known ones", err)
	}
	if sel, err := rp.Select(""); err != nil || len(sel) != 2 {
		t.Errorf("select all: %v %v", sel, err)
	}
	_, err = ParseRegionProfiles([]byte(`{"regions":[{"name":"x","user_edge":{"rtt_ms":1,"jitter_ms":2,"source":"nope"}}],"sources":[]}`))
	for _, want := range []string{"jitter_ms 2.0 exceeds", "source \"nope\" is not listed"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}

// TestMixShieldRelay replays the default mix through a model of the edge (one cache per
// region, one shared shield, every response cached at once) and checks that each region
// gets its shield hits, whether all regions run in one generator or one runner per region
// (the prod runners, aligned on one start and rate).
func TestMixShieldRelay(t *testing.T) {
	t.Parallel()
	f := loadDefaultScenarios(t)
	regions := []string{"us-east-1", "il-central-1", "eu-west-1"}
	const perRegion = 15000 // 60 s of the 10x stage, 500 req/s over two regions
	type tiers struct{ edge, shield, origin int }
	replay := func(next func(region int, i uint64) (string, bool)) []tiers {
		shield := map[string]bool{}
		edges := make([]map[string]bool, len(regions))
		for i := range edges {
			edges[i] = map[string]bool{}
		}
		got := make([]tiers, len(regions))
		for i := uint64(0); i < perRegion*uint64(len(regions)); i++ {
			reg := int(i % uint64(len(regions)))
			u, cacheable := next(reg, i)
			if !cacheable {
				continue
			}
			switch {
			case edges[reg][u]:
				got[reg].edge++
			case shield[u]:
				got[reg].shield++
			default:
				got[reg].origin++
			}
			edges[reg][u], shield[u] = true, true
		}
		return got
	}
	one, err := NewMix(f.Mix, MixOptions{Target: "http://e", Regions: regions, Token: "t", HotRatio: -1})
	if err != nil {
		t.Fatal(err)
	}
	runners := make([]*Mix, len(regions))
	for i, r := range regions {
		if runners[i], err = NewMix(f.Mix, MixOptions{Target: "http://e", Regions: []string{r}, Token: "t", HotRatio: -1, RegionIndex: i, RegionCount: len(regions)}); err != nil {
			t.Fatal(err)
		}
	}
	var req Request
	for name, next := range map[string]func(int, uint64) (string, bool){
		"one generator": func(reg int, i uint64) (string, bool) {
			one.Next(i, &req)
			if req.Region != reg {
				t.Fatalf("iteration %d: region %d, want %d", i, req.Region, reg)
			}
			return req.URL, req.Kind == KindAPI
		},
		"a runner per region": func(reg int, i uint64) (string, bool) {
			runners[reg].Next(i/uint64(len(regions)), &req)
			return req.URL, req.Kind == KindAPI
		},
	} {
		for reg, tr := range replay(next) {
			// 10% relay slots, led by each region in turn: 2/3 of them shield hits here.
			if tr.shield < 900 || tr.origin < 500 || tr.edge < 10000 {
				t.Errorf("%s, %s: edge %d, shield %d, origin %d: want >= 900 shield hits and >= 500 origin requests", name, regions[reg], tr.edge, tr.shield, tr.origin)
			}
		}
	}
	f.Mix.ShieldLag = 0
	if _, err := NewMix(f.Mix, MixOptions{Regions: regions, HotRatio: -1}); err == nil || !strings.Contains(err.Error(), "shield_lag") {
		t.Errorf("err = %v, want shield_lag rejected", err)
	}
}

// TestMixSaltRenewsColdKeys: the edge keeps API answers for an hour, so a second run must
// not send the first run's cache-missing keys; the hot set stays the same run to run.
func TestMixSaltRenewsColdKeys(t *testing.T) {
	t.Parallel()
	f := loadDefaultScenarios(t)
	regions := []string{"us-east-1", "il-central-1"}
	urls := func(salt uint64) map[string]bool {
		m, err := NewMix(f.Mix, MixOptions{Target: "http://e", Regions: regions, Token: "t", HotRatio: -1, Salt: salt})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		var r Request
		for i := uint64(1); i <= 20000; i++ {
			m.Next(i, &r)
			out[r.URL] = true
		}
		return out
	}
	a, again, b := urls(1), urls(1), urls(2)
	same := 0
	for u := range a {
		if b[u] {
			same++
		}
		if !again[u] {
			t.Fatalf("the same salt sent %s only once", u)
		}
	}
	// Shared: the hot set (32 tuples per parameterised endpoint) and the parameterless ones.
	if same > 200 || same < 20 {
		t.Errorf("%d of %d distinct URLs repeat under another salt: want only the hot set", same, len(a))
	}
}
