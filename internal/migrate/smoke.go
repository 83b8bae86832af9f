package migrate

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultSmokeEndpoints is the endpoint list migrate:smoke reads by default.
const DefaultSmokeEndpoints = "migration/smoke-endpoints.txt"

// ErrSmokeDifferent is returned when an endpoint answered differently from the two databases.
var ErrSmokeDifferent = errors.New("API answers differ between source and target database")

// Endpoint is one call of the smoke list.
type Endpoint struct {
	Auth    string // "none", "user", "admin"
	Subject string
	Method  string
	Path    string
}

func (e Endpoint) String() string {
	a := e.Auth
	if e.Subject != "" {
		a += ":" + e.Subject
	}
	return fmt.Sprintf("%s %s [%s]", e.Method, e.Path, a)
}

// ParseEndpoints reads "AUTH METHOD PATH" lines; '#' starts a comment.
func ParseEndpoints(r io.Reader) ([]Endpoint, error) {
	var out []Endpoint
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want AUTH METHOD PATH, got %q", n, strings.TrimSpace(line))
		}
		e := Endpoint{Method: strings.ToUpper(f[1]), Path: f[2]}
		e.Auth, e.Subject, _ = strings.Cut(f[0], ":")
		switch e.Auth {
		case "none":
		case "user", "admin":
			if e.Subject == "" {
				return nil, fmt.Errorf("line %d: %s needs a subject, e.g. %s:user_alice", n, e.Auth, e.Auth)
			}
		default:
			return nil, fmt.Errorf("line %d: auth %q is not none, user:SUBJECT or admin:SUBJECT", n, f[0])
		}
		if !strings.HasPrefix(e.Path, "/") {
			return nil, fmt.Errorf("line %d: path %q must start with /", n, e.Path)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no endpoints listed")
	}
	return out, nil
}

// SmokeOptions configures Smoke.
type SmokeOptions struct {
	SourceURL, TargetURL string
	Endpoints            []Endpoint
	// APIBinary is a built examples/zmanim-api (or the real API with the same environment
	// contract); "" builds examples/zmanim-api from the repository at RepoRoot.
	APIBinary string
	RepoRoot  string
	// RedisAddrs are two Redis servers, one per API so caches cannot leak answers from one
	// database into the other; empty starts two throwaway redis-server processes.
	RedisAddrs []string
	ReportPath string
	Out        io.Writer
}

// SmokeResult is one endpoint's comparison.
type SmokeResult struct {
	Endpoint     string `json:"endpoint"`
	SourceStatus int    `json:"source_status"`
	TargetStatus int    `json:"target_status"`
	Same         bool   `json:"same"`
	Difference   string `json:"difference,omitempty"`
}

// Smoke starts the API twice, on the source and on the target database, calls every endpoint
// on both and compares status codes and JSON-normalized bodies.
func Smoke(ctx context.Context, o SmokeOptions) ([]SmokeResult, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	work, err := os.MkdirTemp("", "zops-smoke-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	bin := o.APIBinary
	if bin == "" {
		bin = filepath.Join(work, "zmanim-api")
		fmt.Fprintf(o.Out, "smoke: building examples/zmanim-api\n")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/zmanim-api")
		cmd.Dir = o.RepoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build examples/zmanim-api: %w\n%s", err, out)
		}
	}
	redisAddrs := o.RedisAddrs
	if len(redisAddrs) == 0 {
		for i := 0; i < 2; i++ {
			addr, stop, err := startRedis(ctx, filepath.Join(work, fmt.Sprintf("redis%d", i)))
			if err != nil {
				return nil, err
			}
			defer stop()
			redisAddrs = append(redisAddrs, addr)
		}
	}
	if len(redisAddrs) != 2 || redisAddrs[0] == redisAddrs[1] {
		return nil, errors.New("smoke needs two different Redis servers (ZOPS_SMOKE_REDIS_ADDRS=host:port,host:port), one per API, so one cache cannot answer for the other database")
	}

	iss, err := newIssuer()
	if err != nil {
		return nil, err
	}
	stopJWKS, err := iss.serve()
	if err != nil {
		return nil, err
	}
	defer stopJWKS()

	secret := randomHex(16)
	var apis [2]*apiProc
	for i, db := range []string{o.SourceURL, o.TargetURL} {
		name := []string{"source", "target"}[i]
		p, err := startAPI(ctx, bin, name, db, redisAddrs[i], iss, secret)
		if err != nil {
			for _, a := range apis {
				if a != nil {
					a.stop()
				}
			}
			return nil, err
		}
		apis[i] = p
		defer p.stop()
		fmt.Fprintf(o.Out, "smoke: API on the %s database listening on %s\n", name, p.addr)
	}

	client := &http.Client{Timeout: 30 * time.Second}
	var results []SmokeResult
	differ := 0
	for _, e := range o.Endpoints {
		var resp [2]response
		var errs [2]error
		var wg sync.WaitGroup
		for i := range apis {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp[i], errs[i] = call(ctx, client, apis[i].addr, e, iss, secret)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs[0], errs[1]); err != nil {
			return results, fmt.Errorf("call %s: %w", e, err)
		}
		r := SmokeResult{Endpoint: e.String(), SourceStatus: resp[0].status, TargetStatus: resp[1].status}
		r.Difference = compareResponses(resp[0], resp[1])
		r.Same = r.Difference == ""
		mark := "same"
		if !r.Same {
			differ++
			mark = "DIFF"
		}
		fmt.Fprintf(o.Out, "smoke: %-4s %d %d %s", mark, r.SourceStatus, r.TargetStatus, e)
		if r.Difference != "" {
			fmt.Fprintf(o.Out, ": %s", r.Difference)
		}
		fmt.Fprintln(o.Out)
		results = append(results, r)
	}
	if o.ReportPath != "" {
		if err := os.MkdirAll(filepath.Dir(o.ReportPath), 0o755); err != nil {
			return results, err
		}
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(o.ReportPath, append(b, '\n'), 0o644); err != nil {
			return results, fmt.Errorf("write smoke report: %w", err)
		}
		fmt.Fprintf(o.Out, "smoke: report %s\n", o.ReportPath)
	}
	fmt.Fprintf(o.Out, "smoke: %d endpoints, %d differ\n", len(results), differ)
	if differ > 0 {
		return results, fmt.Errorf("%w: %d of %d endpoints", ErrSmokeDifferent, differ, len(results))
	}
	return results, nil
}

type response struct {
	status int
	body   []byte
}

func call(ctx context.Context, c *http.Client, addr string, e Endpoint, iss *issuer, secret string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, e.Method, "http://"+addr+e.Path, nil)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("X-Origin-Verify", secret)
	if e.Auth != "none" {
		scope := ""
		if e.Auth == "admin" {
			scope = "admin"
		}
		tok, err := iss.mint(e.Subject, scope)
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

// apiProc is one running API process.
type apiProc struct {
	cmd  *exec.Cmd
	addr string
	logs *lockedBuffer
	done chan error
}

func (p *apiProc) stop() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// lockedBuffer collects a child's output while the caller may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startAPI(ctx context.Context, bin, name, dbURL, redisAddr string, iss *issuer, secret string) (*apiProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "serve")
	// The API's own contract is its environment; the database URL travels there, not in argv.
	cmd.Env = append(os.Environ(),
		"ZMANIM_DATABASE_URL="+dbURL,
		"ZMANIM_REDIS_ADDR="+redisAddr,
		"ZMANIM_LISTEN="+addr,
		"ZMANIM_JWKS_URL="+iss.jwksURL,
		"ZMANIM_JWT_ISSUER="+iss.issuer,
		"ZMANIM_JWT_AUDIENCE="+iss.audience,
		"ZMANIM_ORIGIN_VERIFY_SECRET="+secret,
		"LISTEN_FDS=", "NOTIFY_SOCKET=",
	)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start API on %s database: %w", name, err)
	}
	p := &apiProc{cmd: cmd, addr: addr, logs: logs, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return nil, fmt.Errorf("API on the %s database exited: %v\n%s", name, err, tail(logs.String(), 20))
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health", nil)
		req.Header.Set("X-Origin-Verify", secret)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("API on the %s database not healthy after 60s:\n%s", name, tail(logs.String(), 20))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startRedis runs a throwaway redis-server without persistence on a free loopback port.
func startRedis(ctx context.Context, dir string) (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, errors.New("redis-server not found: install redis-server or set ZOPS_SMOKE_REDIS_ADDRS=host:port,host:port")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.CommandContext(ctx, bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", dir)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return addr, stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("redis-server on %s did not start:\n%s", addr, tail(logs.String(), 10))
}

// issuer is a throwaway Clerk stand-in: one RSA key, a JWKS endpoint, RS256 tokens.
type issuer struct {
	key                       *rsa.PrivateKey
	kid                       string
	issuer, audience, jwksURL string
	srv                       *http.Server
}

func newIssuer() (*issuer, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate smoke signing key: %w", err)
	}
	return &issuer{key: k, kid: "smoke-" + randomHex(4), audience: "zmanim-smoke"}, nil
}

func (s *issuer) serve() (func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for JWKS: %w", err)
	}
	base := "http://" + l.Addr().String()
	s.issuer, s.jwksURL = base, base+"/.well-known/jwks.json"
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": s.kid, "alg": "RS256", "use": "sig",
		"n": b64(s.key.N.Bytes()), "e": b64(big.NewInt(int64(s.key.E)).Bytes()),
	}}})
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return func() { _ = s.srv.Close() }, nil
}

func (s *issuer) mint(sub, scope string) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": s.kid})
	now := time.Now().Unix()
	claims := map[string]any{"iss": s.issuer, "aud": s.audience, "sub": sub, "iat": now, "nbf": now - 5, "exp": now + 300}
	if scope != "" {
		claims["scope"] = scope
	}
	p, _ := json.Marshal(claims)
	signing := b64(h) + "." + b64(p)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign smoke token: %w", err)
	}
	return signing + "." + b64(sig), nil
}
