package box

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Handler serves the supervisor's control API (production: a unix socket used by
// `zops-box reload`; the twin: under /_twin/box/ on its control port).
//
//	GET  status        Status as JSON
//	POST reload        start the binary `current` points to, then stop the old process;
//	                   200 with the new Process, or 409 with the error and last log lines
//	GET  logs?n=100    the last output lines, text
func (s *Supervisor) Handler(prefix string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+prefix+"status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("POST "+prefix+"reload", func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Reload(r.Context())
		if err != nil {
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("GET "+prefix+"logs", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, l := range s.Logs(n) {
			fmt.Fprintln(w, l)
		}
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Client talks to a supervisor's control API.
type Client struct {
	Base string // e.g. http://127.0.0.1:17074/_twin/box/
	HTTP *http.Client
}

// ErrReload is a reload the supervisor refused because the new process did not get ready;
// the previous process is still serving.
var ErrReload = errors.New("reload failed; the previous version keeps serving")

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.Base, "/")+"/"+path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("box supervisor %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusConflict {
		var e struct{ Error string }
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("%w: %s", ErrReload, e.Error)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("box supervisor %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	if s, ok := out.(*string); ok {
		*s = string(body)
		return nil
	}
	return json.Unmarshal(body, out)
}

// Status returns the service status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "status", &s)
}

// Reload asks for a zero-downtime switch to the binary `current` points to.
func (c *Client) Reload(ctx context.Context) (Process, error) {
	var p Process
	return p, c.do(ctx, http.MethodPost, "reload", &p)
}

// Logs returns the last n log lines.
func (c *Client) Logs(ctx context.Context, n int) (string, error) {
	var s string
	return s, c.do(ctx, http.MethodGet, "logs?n="+strconv.Itoa(n), &s)
}
