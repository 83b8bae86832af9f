package checksum

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestColHash(t *testing.T) {
	t.Parallel()
	s := &side{postgis: "public", major: 16}
	tests := []struct {
		col  column
		want string
	}{
		{column{Name: "id", Base: "int8", Kind: "b"}, `hashint8extended("id", 1)`},
		{column{Name: "elev", Base: "float8", Kind: "b"}, `hashfloat8extended("elev", 1)`},
		{column{Name: "price", Base: "numeric", Kind: "b"}, `hash_numeric_extended("price", 1)`},
		{column{Name: "name", Base: "text", Kind: "b", Collatable: true}, `hashtextextended("name" COLLATE "C", 1)`},
		{column{Name: "cc", Base: "bpchar", Kind: "b", Collatable: true}, `hashbpcharextended("cc" COLLATE "C", 1)`},
		{column{Name: "at", Base: "timestamptz", Kind: "b"}, `timestamp_hash_extended("at"::timestamp, 1)`},
		{column{Name: "geom", Base: "geometry", Kind: "b"}, `hash_array_extended(ARRAY["public".st_asewkb("geom", 'NDR')], 1)`},
		{column{Name: "g", Base: "geography", Kind: "b"}, `hash_array_extended(ARRAY["public".st_asewkb("g"::"public".geometry, 'NDR')], 1)`},
		{column{Name: "info", Base: "jsonb", Kind: "b"}, `jsonb_hash_extended("info", 1)`},
		{column{Name: "doc", Base: "json", Kind: "b"}, `hashtextextended("doc"::text, 1)`},
		{column{Name: "tags", Base: "_text", Kind: "b", Elem: "text", ElemKind: "b", Collatable: true}, `hash_array_extended("tags" COLLATE "C", 1)`},
		// Enum hashes are OIDs, which differ between databases: text form instead.
		{column{Name: "mood", Base: "mood", Kind: "e"}, `hashtextextended("mood"::text, 1)`},
		{column{Name: "moods", Base: "_mood", Kind: "b", Elem: "mood", ElemKind: "e"}, `hashtextextended("moods"::text, 1)`},
		{column{Name: "ok", Base: "bool", Kind: "b"}, `hashint4extended("ok"::int, 1)`},
	}
	for _, tt := range tests {
		got := colHash(s, tt.col, 1)
		if !strings.HasPrefix(got, "coalesce("+tt.want+", ") {
			t.Errorf("colHash(%s %s) = %s, want coalesce(%s, ...)", tt.col.Name, tt.col.Base, got, tt.want)
		}
	}
	if nullHash(1) == nullHash(2) || nullHash(1) == 0 {
		t.Fatal("NULL hashes must differ per column and from 0")
	}
}

func TestTableOf(t *testing.T) {
	t.Parallel()
	tests := []struct{ kind, name, want string }{
		{KindColumn, "public.cities.name", "public.cities"},
		{KindColumn, `"Other Schema"."Odd ""N.ame"""."Weird.Col"`, `"Other Schema"."Odd ""N.ame"""`},
		{KindConstraint, "public.cities cities_pkey", "public.cities"},
		{KindTrigger, `"My Schema"."a b" "t g"`, `"My Schema"."a b"`},
	}
	for _, tt := range tests {
		if got := tableOf(tt.kind, tt.name); got != tt.want {
			t.Errorf("tableOf(%s, %s) = %s, want %s", tt.kind, tt.name, got, tt.want)
		}
	}
}

func TestRangeCond(t *testing.T) {
	t.Parallel()
	src := &side{}
	ti := &tableInfo{Schema: "public", Name: "r", Key: []string{"code", "day"}, Columns: []column{
		{Name: "code", Type: "text", Base: "text", Collatable: true}, {Name: "day", Type: "date", Base: "date"}, {Name: "v", Type: "real", Base: "float4"},
	}}
	p := newPlan(src, src, ti, ti)
	cond, args := p.cond(0, bound{"a", "2025-01-01"}, bound{"b", "2025-01-02"})
	want := `ROW("code" COLLATE "C", "day") >= ROW($1::text::text, $2::text::date) AND ROW("code" COLLATE "C", "day") < ROW($3::text::text, $4::text::date)`
	if cond != want || len(args) != 4 {
		t.Fatalf("cond = %s %v\nwant %s", cond, args, want)
	}
	if c, a := p.cond(0, nil, nil); c != "true" || a != nil {
		t.Fatalf("open range = %s %v", c, a)
	}
	p.bounds = []bound{{"m", "2025-01-01"}}
	if r := p.ranges(); len(r) != 2 || r[0][0] != nil || r[1][1] != nil {
		t.Fatalf("ranges = %v", r)
	}
}

func TestDiffCatalogs(t *testing.T) {
	t.Parallel()
	src := catalog{KindTable: {"public.a": "table", "public.b": "table"}, KindColumn: {"public.a.x": "integer", "public.b.y": "text"},
		KindExtension: {"postgis": "3.3.2"}}
	tgt := catalog{KindTable: {"public.a": "table"}, KindColumn: {"public.a.x": "bigint"}, KindExtension: {"postgis": "3.4.0"},
		KindIndex: {"public.extra_idx": "CREATE INDEX ON public.a USING btree (x)"}}
	got := diffCatalogs(src, tgt)
	var lines []string
	for _, d := range got {
		lines = append(lines, d.String())
	}
	want := []string{
		`~ extension postgis differs: source "3.3.2", target "3.4.0"`,
		`- table public.b missing in target (source: table)`,
		`~ column public.a.x differs: source "integer", target "bigint"`,
		`+ index public.extra_idx only in target (target: CREATE INDEX ON public.a USING btree (x))`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diff:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestReportOutput(t *testing.T) {
	t.Parallel()
	r := Report{Source: "postgres://u@a/db", Target: "postgres://u@b/db",
		Schema: []SchemaDiff{{Kind: KindConstraint, Object: "public.c pop", Change: ChangeMissing, Source: "CHECK ((population >= 0))"}},
		Tables: []*TableReport{
			{Table: "public.c", Method: MethodRanges, KeyColumns: []string{"id"}, SourceRows: 3, TargetRows: 2, Ranges: 1, MismatchedRanges: 1,
				MissingCount: 1, Missing: []RowDiff{{Key: []string{"2"}}}},
			{Table: "public.d", Method: MethodRanges, SourceRows: 5, TargetRows: 5, Ranges: 1},
		}}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- constraint public.c pop missing in target (source: CHECK ((population >= 0)))",
		"table public.c: DIFFERENT: source 3 rows, target 2 rows; missing 1, extra 0, changed 0 (1 of 1 ranges differ)",
		"  missing in target: id=2",
		"table public.d: identical, 5 rows",
		"verify: DIFFERENT: 1 schema differences, 0 sequence problems, 1 of 2 tables differ, 8 source rows",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
	path := t.TempDir() + "/r.json"
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	var back Report
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "population >= 0") || back.Tables[0].MissingCount != 1 || back.Identical {
		t.Fatalf("JSON report: %s", raw)
	}
}

func TestKeyOrderUsesIndexWhenBytewise(t *testing.T) {
	t.Parallel()
	src := &side{}
	mk := func(bytewise bool) *tableInfo {
		return &tableInfo{Schema: "public", Name: "codes", Key: []string{"code"}, Columns: []column{
			{Name: "code", Type: "text", Base: "text", Collatable: true, Bytewise: bytewise}}}
	}
	tests := []struct {
		srcC, tgtC bool
		want       string
	}{
		{true, true, `"code"`},
		{true, false, `"code" COLLATE "C"`},
		{false, false, `"code" COLLATE "C"`},
	}
	for _, tt := range tests {
		p := newPlan(src, src, mk(tt.srcC), mk(tt.tgtC))
		if p.orderBy[0] != tt.want || p.orderBy[1] != tt.want {
			t.Errorf("source bytewise %v, target %v: order by %q/%q, want %q", tt.srcC, tt.tgtC, p.orderBy[0], p.orderBy[1], tt.want)
		}
	}
}

func TestScanAllOnlyForUnindexableTextKeys(t *testing.T) {
	t.Parallel()
	src := &side{}
	text := &tableInfo{Schema: "public", Name: "c", Key: []string{"code"}, Columns: []column{{Name: "code", Type: "text", Base: "text", Collatable: true}}}
	textC := &tableInfo{Schema: "public", Name: "c", Key: []string{"code"}, Columns: []column{{Name: "code", Type: "text", Base: "text", Collatable: true, Bytewise: true}}}
	ints := &tableInfo{Schema: "public", Name: "i", Key: []string{"id"}, Columns: []column{{Name: "id", Type: "bigint", Base: "int8"}}}
	tests := []struct {
		s, t   *tableInfo
		bounds []bound
		want   bool
	}{
		{text, text, []bound{{"m"}}, true},
		{text, text, nil, false}, // one range: a plain scan anyway
		{textC, textC, []bound{{"m"}}, false},
		{ints, ints, []bound{{"5"}}, false},
	}
	for i, tt := range tests {
		p := newPlan(src, src, tt.s, tt.t)
		p.bounds = tt.bounds
		if got := p.scanAll(); got != tt.want {
			t.Errorf("case %d: scanAll = %v, want %v", i, got, tt.want)
		}
	}
}
