package migrate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

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

// startAPI runs the API binary on dbURL and redisAddr, trusting iss, and waits until its
// /health answers 200.
func startAPI(ctx context.Context, bin, name, dbURL, redisAddr string, iss *smokeIssuer, secret string) (*apiProc, error) {
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
		"ZMANIM_JWT_ISSUER="+iss.iss.URL,
		"ZMANIM_JWT_AUDIENCE="+iss.iss.Audience,
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
