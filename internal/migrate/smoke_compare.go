package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
)

type response struct {
	status int
	body   []byte
}

// call sends one endpoint's request to the API at addr, with the origin-verify secret and,
// unless the endpoint is public, a token for its subject.
func call(ctx context.Context, c *http.Client, addr string, e Endpoint, iss *smokeIssuer, secret string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, e.Method, "http://"+addr+e.Path, nil)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("X-Origin-Verify", secret)
	if e.Auth != "none" {
		tok, err := iss.mint(e.Auth, e.Subject)
		if err != nil {
			return response{}, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, body: b}, nil
}

// compareResponses returns "" when status and body match (JSON compared as values, so key
// order and spacing do not matter), else a short description of the first difference. A 5xx
// is a difference even when both sides fail alike: the smoke test must prove the API works.
func compareResponses(a, b response) string {
	if a.status != b.status {
		return fmt.Sprintf("status %d from source, %d from target", a.status, b.status)
	}
	if a.status >= 500 {
		return fmt.Sprintf("both answered %d", a.status)
	}
	var va, vb any
	ea, eb := json.Unmarshal(a.body, &va), json.Unmarshal(b.body, &vb)
	if ea != nil || eb != nil {
		if !bytes.Equal(a.body, b.body) {
			return fmt.Sprintf("bodies differ (%d vs %d bytes)", len(a.body), len(b.body))
		}
		return ""
	}
	return firstJSONDiff("$", va, vb)
}

func firstJSONDiff(path string, a, b any) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: object vs %s", path, short(b))
		}
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			if d := firstJSONDiff(path+"."+k, x[k], y[k]); d != "" {
				return d
			}
		}
		return ""
	case []any:
		y, ok := b.([]any)
		if !ok {
			return fmt.Sprintf("%s: array vs %s", path, short(b))
		}
		for i := 0; i < min(len(x), len(y)); i++ {
			if d := firstJSONDiff(fmt.Sprintf("%s[%d]", path, i), x[i], y[i]); d != "" {
				return d
			}
		}
		if len(x) != len(y) {
			return fmt.Sprintf("%s: %d items from source, %d from target", path, len(x), len(y))
		}
		return ""
	default:
		if !reflect.DeepEqual(a, b) {
			return fmt.Sprintf("%s: source %s, target %s", path, short(a), short(b))
		}
		return ""
	}
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}
