package backup

import (
	"testing"

	"github.com/shtetl/zmanim-ops/internal/config"
)

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
		t.Setenv(EnvRepo, tt.override)
		if got := RepositoryURL(envs[tt.env]); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.env, got, tt.want)
		}
	}
}
