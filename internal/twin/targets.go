package twin

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/jwtissuer"
	"github.com/shtetl/zmanim-ops/internal/opts"
)

// ReadOptions reads twin:up's options: ZOPS_TWIN_API_ENV (KEY=VALUE,... added to the API's
// environment file) and ZOPS_TWIN_BACKUPS (run the box's backup timers; default on).
func ReadOptions(r *opts.Reader) Options {
	o := Options{NoBackups: !r.Bool("ZOPS_TWIN_BACKUPS", true)}
	for _, kv := range strings.Split(r.String("ZOPS_TWIN_API_ENV", ""), ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if !strings.Contains(kv, "=") {
			r.Problem("ZOPS_TWIN_API_ENV", kv, "want KEY=VALUE pairs separated by commas")
			continue
		}
		o.APIEnv = append(o.APIEnv, kv)
	}
	return o
}

// load reads the options and the configuration and returns the twin.
func load(out io.Writer) (*Twin, error) {
	r := opts.New()
	o := ReadOptions(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	env, err := config.Load()
	if err != nil {
		return nil, err
	}
	return NewWith(env, out, o)
}

// UpTarget is twin:up.
func UpTarget(ctx context.Context, out io.Writer) error {
	t, err := load(out)
	if err != nil {
		return err
	}
	return t.Up(ctx)
}

// DownTarget is twin:down.
func DownTarget(ctx context.Context, out io.Writer) error {
	t, err := load(out)
	if err != nil {
		return err
	}
	return t.Down(ctx)
}

// ResetTarget is twin:reset.
func ResetTarget(ctx context.Context, out io.Writer) error {
	t, err := load(out)
	if err != nil {
		return err
	}
	return t.Reset(ctx)
}

// ReadStatusOptions reads twin:status's option: ZOPS_JSON prints JSON.
func ReadStatusOptions(r *opts.Reader) (asJSON bool) { return r.Bool("ZOPS_JSON", false) }

// StatusTarget is twin:status (ZOPS_JSON=1 prints JSON); an unhealthy twin is an error.
func StatusTarget(ctx context.Context, out io.Writer) error {
	r := opts.New()
	asJSON := ReadStatusOptions(r)
	if err := r.Err(); err != nil {
		return err
	}
	t, err := load(out)
	if err != nil {
		return err
	}
	hs := t.Status(ctx)
	if err := PrintStatus(out, hs, asJSON); err != nil {
		return err
	}
	if !Healthy(hs) {
		return fmt.Errorf("%w: run `go tool mage twin:up`", ErrUnhealthy)
	}
	return nil
}

// TokenTarget is twin:token KIND: it prints a token minted by the twin's issuer
// (ZOPS_TOKEN_SUB sets the subject).
func TokenTarget(ctx context.Context, out io.Writer, kind string) error {
	r := opts.New()
	sub := r.String("ZOPS_TOKEN_SUB", "")
	if err := r.Err(); err != nil {
		return err
	}
	env, err := config.Load()
	if err != nil {
		return err
	}
	tok, err := jwtissuer.MintRemote(ctx, env.URL(env.Twin.Ports.JWT), kind, sub)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, tok)
	return nil
}

// PostgresURL is the superuser URL of the running twin's PostgreSQL, "" when the selected
// environment is not a twin or the twin was never set up (bench:verify then needs
// ZOPS_BENCH_PG_URL).
func PostgresURL() string {
	env, err := config.Load()
	if err != nil || !env.IsTwin() {
		return ""
	}
	t, err := New(env, nil)
	if err != nil || t.Secrets().PGPassword == "" {
		return ""
	}
	return t.PGURL("postgres")
}
