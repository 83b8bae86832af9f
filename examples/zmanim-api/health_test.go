package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Finding 5 (issue 14): /health is public and returned the raw driver errors, which name the
// database user, the database and the address. It now answers "error" per dependency and logs
// the detail.
func TestHealthDoesNotLeakDriverErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close() // nothing listens there: both dependencies fail
	pool, err := pgxpool.New(context.Background(), "postgres://leaky_user:pw@"+closed+"/secret_db?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rdb := redis.NewClient(&redis.Options{Addr: closed})
	defer rdb.Close()
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&logs, nil)))
	defer slog.SetDefault(prev)

	w := httptest.NewRecorder()
	(&app{db: pool, redis: rdb}).routes().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/health", nil))
	var got map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusServiceUnavailable || got["db"] != "error" || got["redis"] != "error" || got["status"] != "degraded" {
		t.Fatalf("health %d %v", w.Code, got)
	}
	for _, leak := range []string{"leaky_user", "secret_db", closed, "127.0.0.1"} {
		if strings.Contains(w.Body.String(), leak) {
			t.Errorf("public /health shows %q: %s", leak, w.Body)
		}
	}
	if !strings.Contains(logs.String(), "health: database unreachable") || !strings.Contains(logs.String(), closed) {
		t.Errorf("the detail is not logged: %s", logs.String())
	}
}
