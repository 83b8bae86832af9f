package backup

import (
	"testing"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
)

// The box's default database URL must be one pgtool accepts: the old default
// (postgres://postgres@localhost:5432/zmanim?host=/var/run/postgresql) was refused with
// "unsupported parameter host", so every production backup failed before it started.
func TestProdDatabaseURLParses(t *testing.T) {
	c, err := pgtool.ParseURL(ProdPGURL)
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", ProdPGURL, err)
	}
	if !c.IsSocket() || c.User != "postgres" || c.Database != "zmanim" {
		t.Fatalf("ProdPGURL = %+v: want the postgres user on the local socket, database zmanim", c)
	}
}

func TestRepositoryURL(t *testing.T) {
	envs := config.Defaults().Environments
	tests := []struct {
		env, override, want string
	}{
		{"local", "", "s3:http://127.0.0.1:17070/zmanim-backups-local/restic"},
		{"prod", "", "s3:s3.eu-west-1.amazonaws.com/zmanim-backups-prod/restic"},
		{"prod", "s3:http://elsewhere/b/r", "s3:http://elsewhere/b/r"},
	}
	for _, tt := range tests {
		if got := RepositoryURL(envs[tt.env], tt.override); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.env, got, tt.want)
		}
	}
}
