package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/shtetl/zmanim-ops/examples/zmanim-api/solar"
)

type app struct {
	db    *pgxpool.Pool
	redis *redis.Client
	auth  *auth
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", a.health)
	mux.HandleFunc("GET /api/zmanim", a.zmanim)
	mux.HandleFunc("GET /api/cities", a.cities)
	mux.HandleFunc("GET /api/publishers", a.publishers)
	mux.Handle("GET /api/publisher/profile", a.auth.requireToken("", http.HandlerFunc(a.profile)))
	mux.Handle("GET /api/publisher/zmanim", a.auth.requireToken("", http.HandlerFunc(a.publisherZmanim)))
	mux.Handle("/api/publisher/", a.auth.requireToken("", http.HandlerFunc(notFound)))
	mux.Handle("GET /api/admin/stats", a.auth.requireToken("admin", http.HandlerFunc(a.adminStats)))
	mux.Handle("/api/admin/", a.auth.requireToken("admin", http.HandlerFunc(notFound)))
	mux.HandleFunc("/", notFound)
	return mux
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func badRequest(w http.ResponseWriter, format string, a ...any) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"message": fmt.Sprintf(format, a...)})
}

func serverError(w http.ResponseWriter, r *http.Request, err error) {
	slog.Error("request failed", "path", r.URL.Path, "err", err.Error())
	writeJSON(w, http.StatusInternalServerError, map[string]string{"message": "internal error"})
}

func (a *app) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	out := map[string]string{"status": "ok", "version": version, "commit": commit, "db": "ok", "redis": "ok"}
	status := http.StatusOK
	// /health is public: a driver error names the user, database and address, so the answer
	// says only which dependency failed and the detail goes to the log.
	if err := a.db.Ping(ctx); err != nil {
		slog.Error("health: database unreachable", "err", err.Error())
		out["db"], out["status"], status = "error", "degraded", http.StatusServiceUnavailable
	}
	if err := a.redis.Ping(ctx).Err(); err != nil {
		slog.Error("health: redis unreachable", "err", err.Error())
		out["redis"], out["status"], status = "error", "degraded", http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, out)
}

func parseCoord(r *http.Request, name string, limit float64) (float64, error) {
	v, err := strconv.ParseFloat(r.URL.Query().Get(name), 64)
	if err != nil || math.IsNaN(v) || math.Abs(v) > limit {
		return 0, fmt.Errorf("%s must be a number between -%g and %g", name, limit, limit)
	}
	return v, nil
}

// zmanim answers sunrise, sunset and a few zmanim (UTC, RFC 3339) for a place and date,
// cached in Redis for a day.
func (a *app) zmanim(w http.ResponseWriter, r *http.Request) {
	lat, err := parseCoord(r, "lat", 90)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	lon, err := parseCoord(r, "lon", 180)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	day := time.Now().UTC()
	if d := r.URL.Query().Get("date"); d != "" {
		if day, err = time.Parse("2006-01-02", d); err != nil {
			badRequest(w, "date must be YYYY-MM-DD")
			return
		}
	}
	key := fmt.Sprintf("zmanim:v1:%.4f:%.4f:%s", lat, lon, day.Format("2006-01-02"))
	w.Header().Set("Cache-Control", "public, max-age=3600")
	if b, err := a.redis.Get(r.Context(), key).Bytes(); err == nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Zmanim-Cache", "redis")
		_, _ = w.Write(b)
		return
	} else if !errors.Is(err, redis.Nil) {
		slog.Warn("redis get", "err", err.Error())
	}
	out, err := computeZmanim(day, lat, lon)
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": err.Error()})
		return
	}
	b, _ := json.Marshal(out)
	if err := a.redis.Set(r.Context(), key, b, 24*time.Hour).Err(); err != nil {
		slog.Warn("redis set", "err", err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Zmanim-Cache", "computed")
	_, _ = w.Write(append(b, '\n'))
}

func computeZmanim(day time.Time, lat, lon float64) (map[string]any, error) {
	ev := func(z float64, morning bool) (time.Time, error) { return solar.Event(day, lat, lon, z, morning) }
	sunrise, err := ev(solar.ZenithSunriseSunset, true)
	if err != nil {
		return nil, fmt.Errorf("no sunrise at %.4f,%.4f on %s", lat, lon, day.Format("2006-01-02"))
	}
	sunset, err := ev(solar.ZenithSunriseSunset, false)
	if err != nil {
		return nil, fmt.Errorf("no sunset at %.4f,%.4f on %s", lat, lon, day.Format("2006-01-02"))
	}
	hour := sunset.Sub(sunrise) / 12 // sha'ah zmanit (GRA)
	out := map[string]any{
		"date":               day.Format("2006-01-02"),
		"lat":                lat,
		"lon":                lon,
		"sunrise":            sunrise.Format(time.RFC3339),
		"sunset":             sunset.Format(time.RFC3339),
		"solar_noon":         solar.Noon(day, lon).Truncate(time.Second).Format(time.RFC3339),
		"sof_zman_shma_gra":  sunrise.Add(3 * hour).Format(time.RFC3339),
		"sof_zman_tfila_gra": sunrise.Add(4 * hour).Format(time.RFC3339),
	}
	if t, err := ev(106.1, true); err == nil { // alot hashachar, 16.1 degrees below the horizon
		out["alot_hashachar"] = t.Format(time.RFC3339)
	}
	if t, err := ev(98.5, false); err == nil { // tzeit hakochavim, 8.5 degrees
		out["tzeit"] = t.Format(time.RFC3339)
	}
	return out, nil
}

type city struct {
	ID         int64   `json:"id"`
	Name       string  `json:"name"`
	Country    string  `json:"country"`
	Lat        float64 `json:"lat"`
	Lon        float64 `json:"lon"`
	DistanceKM float64 `json:"distance_km,omitempty"`
}

// cities finds cities by name prefix (?q=) or nearest to a point (?lat=&lon=).
func (a *app) cities(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 10
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l > 0 && l <= 50 {
		limit = l
	}
	var rows []city
	var err error
	switch {
	case q.Get("q") != "":
		rows, err = a.queryCities(r.Context(), `SELECT id, name, country, lat, lon, 0 FROM cities
			WHERE lower(name) LIKE $1 ORDER BY name, id LIMIT $2`,
			escapeLike(strings.ToLower(q.Get("q")))+"%", limit)
	case q.Get("lat") != "" && q.Get("lon") != "":
		lat, e1 := parseCoord(r, "lat", 90)
		lon, e2 := parseCoord(r, "lon", 180)
		if err := errors.Join(e1, e2); err != nil {
			badRequest(w, "%v", err)
			return
		}
		rows, err = a.queryCities(r.Context(), `SELECT id, name, country, lat, lon,
			ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography) / 1000
			FROM cities ORDER BY geom <-> ST_SetSRID(ST_MakePoint($2, $1), 4326) LIMIT $3`, lat, lon, limit)
	default:
		badRequest(w, "give q (name prefix) or lat and lon")
		return
	}
	if err != nil {
		serverError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, map[string]any{"cities": rows, "count": len(rows)})
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func (a *app) queryCities(ctx context.Context, sql string, args ...any) ([]city, error) {
	rows, err := a.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []city{}
	for rows.Next() {
		var c city
		if err := rows.Scan(&c.ID, &c.Name, &c.Country, &c.Lat, &c.Lon, &c.DistanceKM); err != nil {
			return nil, err
		}
		c.DistanceKM = math.Round(c.DistanceKM*10) / 10
		out = append(out, c)
	}
	return out, rows.Err()
}

func (a *app) publishers(w http.ResponseWriter, r *http.Request) {
	rows, err := a.db.Query(r.Context(), `SELECT p.id, p.slug, p.name, count(c.city_id)
		FROM publishers p LEFT JOIN publisher_coverage c ON c.publisher_id = p.id
		GROUP BY p.id ORDER BY p.id`)
	if err != nil {
		serverError(w, r, err)
		return
	}
	defer rows.Close()
	type pub struct {
		ID     int    `json:"id"`
		Slug   string `json:"slug"`
		Name   string `json:"name"`
		Cities int    `json:"cities_covered"`
	}
	out := []pub{}
	for rows.Next() {
		var p pub
		if err := rows.Scan(&p.ID, &p.Slug, &p.Name, &p.Cities); err != nil {
			serverError(w, r, err)
			return
		}
		out = append(out, p)
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, map[string]any{"publishers": out})
}

// profile is a per-user response: it must never be served to another user from a cache.
func (a *app) profile(w http.ResponseWriter, r *http.Request) {
	c := claimsOf(r)
	var slugs []string
	rows, err := a.db.Query(r.Context(), `SELECT slug FROM publishers WHERE owner_sub = $1 ORDER BY slug`, c.Subject)
	if err != nil {
		serverError(w, r, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			serverError(w, r, err)
			return
		}
		slugs = append(slugs, s)
	}
	w.Header().Set("Cache-Control", "private, no-store")
	writeJSON(w, http.StatusOK, map[string]any{"user": c.Subject, "scope": c.Scope, "publishers": slugs})
}

func (a *app) publisherZmanim(w http.ResponseWriter, r *http.Request) {
	c := claimsOf(r)
	rows, err := a.db.Query(r.Context(), `SELECT p.slug, z.zman_key, z.offset_minutes
		FROM publisher_zmanim z JOIN publishers p ON p.id = z.publisher_id
		WHERE p.owner_sub = $1 ORDER BY p.slug, z.zman_key`, c.Subject)
	if err != nil {
		serverError(w, r, err)
		return
	}
	defer rows.Close()
	type pz struct {
		Publisher string `json:"publisher"`
		Zman      string `json:"zman"`
		Offset    int    `json:"offset_minutes"`
	}
	out := []pz{}
	for rows.Next() {
		var p pz
		if err := rows.Scan(&p.Publisher, &p.Zman, &p.Offset); err != nil {
			serverError(w, r, err)
			return
		}
		out = append(out, p)
	}
	w.Header().Set("Cache-Control", "private, no-store")
	writeJSON(w, http.StatusOK, map[string]any{"user": c.Subject, "zmanim": out})
}

func (a *app) adminStats(w http.ResponseWriter, r *http.Request) {
	var cities, publishers int64
	if err := a.db.QueryRow(r.Context(), `SELECT (SELECT count(*) FROM cities), (SELECT count(*) FROM publishers)`).Scan(&cities, &publishers); err != nil {
		serverError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "private, no-store")
	writeJSON(w, http.StatusOK, map[string]any{"cities": cities, "publishers": publishers, "admin": claimsOf(r).Subject})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		slog.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "ms", float64(time.Since(start).Microseconds())/1000)
	})
}
