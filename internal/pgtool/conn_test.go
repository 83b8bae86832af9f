package pgtool

import (
	"os"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Conn
		wantErr bool
	}{
		{in: "postgres://u:p%3Aw@db.example:6543/app?sslmode=require",
			want: Conn{Host: "db.example", Port: "6543", User: "u", Password: "p:w", Database: "app", Params: map[string]string{"sslmode": "require"}}},
		{in: "postgresql://u@127.0.0.1/app", want: Conn{Host: "127.0.0.1", Port: "5432", User: "u", Database: "app", Params: map[string]string{}}},
		{in: "postgres://u@[::1]:5433/app", want: Conn{Host: "::1", Port: "5433", User: "u", Database: "app", Params: map[string]string{}}},
		{in: "mysql://u@h/app", wantErr: true},
		{in: "postgres://u@h:5432", wantErr: true},
		{in: "postgres://u@h/app?password=x", wantErr: true},
		// The box's own connections (internal/boxspec): a socket directory in host=, which
		// overrides the authority as in libpq; the old default of internal/backup was refused.
		{in: "postgres://postgres@/zmanim?host=/run/postgresql", want: Conn{Host: "/run/postgresql", Port: "5432", User: "postgres", Database: "zmanim", Params: map[string]string{}}},
		{in: "postgres://postgres@localhost:5432/zmanim?host=/var/run/postgresql", want: Conn{Host: "/var/run/postgresql", Port: "5432", User: "postgres", Database: "zmanim", Params: map[string]string{}}},
		{in: "postgres://u@/app?host=db.internal&port=6000&sslmode=require", want: Conn{Host: "db.internal", Port: "6000", User: "u", Database: "app", Params: map[string]string{"sslmode": "require"}}},
		{in: "postgres://u@/app?host=a,b", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.in)
		if (err != nil) != tt.wantErr {
			t.Fatalf("ParseURL(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
		}
		if err != nil {
			if strings.Contains(err.Error(), "p:w") {
				t.Fatalf("error leaks password: %v", err)
			}
			continue
		}
		if got.Host != tt.want.Host || got.Port != tt.want.Port || got.User != tt.want.User ||
			got.Password != tt.want.Password || got.Database != tt.want.Database || len(got.Params) != len(tt.want.Params) {
			t.Fatalf("ParseURL(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestSocketURLRoundTrip(t *testing.T) {
	t.Parallel()
	c := MustParse("postgres://postgres@/zmanim?host=/run/postgresql")
	if !c.IsSocket() {
		t.Fatal("IsSocket() = false for a socket directory")
	}
	back := MustParse(c.URL())
	if back.Host != "/run/postgresql" || back.Port != "5432" || back.Database != "zmanim" {
		t.Fatalf("socket URL round trip: %q -> %+v", c.URL(), back)
	}
	if r := c.Redacted(); r != "postgres://postgres@/zmanim?host=%2Frun%2Fpostgresql" {
		t.Fatalf("Redacted() = %q", r)
	}
	env, cleanup, err := c.Env(t.TempDir())
	defer cleanup()
	if err != nil {
		t.Fatal(err)
	}
	if !contains(env, "PGHOST=/run/postgresql") {
		t.Fatalf("Env() lacks PGHOST=/run/postgresql: %v", env)
	}
}

func TestRedactedAndURL(t *testing.T) {
	t.Parallel()
	c := MustParse("postgres://admin:s3cr%40t@h:1/db?sslmode=verify-full")
	if r := c.Redacted(); strings.Contains(r, "s3cr") || !strings.Contains(r, "admin:xxxxx@h:1/db") {
		t.Fatalf("Redacted() = %q", r)
	}
	back := MustParse(c.URL())
	if back.Password != "s3cr@t" || back.Params["sslmode"] != "verify-full" {
		t.Fatalf("URL round trip lost data: %+v", back)
	}
}

func TestEnvKeepsPasswordInPgpass(t *testing.T) {
	t.Setenv("PGPASSWORD", "inherited")
	t.Setenv("PGHOST", "elsewhere")
	c := MustParse("postgres://app:pa:ss%5Cw@db:5432/main?sslmode=require")
	env, cleanup, err := c.Env(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var passfile string
	for _, kv := range env {
		if strings.Contains(kv, "pa:ss") || kv == "PGPASSWORD=inherited" || kv == "PGHOST=elsewhere" {
			t.Fatalf("environment carries a secret or an inherited PG variable: %q", kv)
		}
		if v, ok := strings.CutPrefix(kv, "PGPASSFILE="); ok {
			passfile = v
		}
	}
	for _, want := range []string{"PGHOST=db", "PGPORT=5432", "PGUSER=app", "PGDATABASE=main", "PGSSLMODE=require"} {
		if !contains(env, want) {
			t.Fatalf("env lacks %s: %v", want, env)
		}
	}
	st, err := os.Stat(passfile)
	if err != nil {
		t.Fatalf("pgpass file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("pgpass mode = %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(passfile)
	if got, want := string(b), `db:5432:*:app:pa\:ss\\w`+"\n"; got != want {
		t.Fatalf("pgpass = %q, want %q", got, want)
	}
	cleanup()
	if _, err := os.Stat(passfile); !os.IsNotExist(err) {
		t.Fatalf("pgpass file not removed: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestParseTOC(t *testing.T) {
	t.Parallel()
	toc := `;
; Archive created at 2026-11-27 10:00:00 UTC
2; 3079 16385 EXTENSION - postgis 
4344; 0 0 COMMENT - EXTENSION postgis 
215; 1259 16999 TABLE public cities postgres
4336; 0 16999 TABLE DATA public cities postgres
4180; 2606 17010 CONSTRAINT public cities cities_pkey postgres
`
	got := ParseTOC(toc)
	want := []struct {
		id         int
		desc, name string
	}{
		{2, "EXTENSION", "- postgis"}, {4344, "COMMENT", "- EXTENSION postgis"}, {215, "TABLE", "public cities postgres"},
		{4336, "TABLE DATA", "public cities postgres"}, {4180, "CONSTRAINT", "public cities cities_pkey postgres"},
	}
	if len(got) != len(want) {
		t.Fatalf("ParseTOC: %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].ID != w.id || got[i].Desc != w.desc || got[i].Name != w.name {
			t.Fatalf("entry %d = %+v, want %+v", i, got[i], w)
		}
	}
}
