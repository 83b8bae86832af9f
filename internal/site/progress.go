package site

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress prints one line about the uploads: rewritten in place on a terminal, every few
// seconds otherwise (CI logs).
type progress struct {
	out        io.Writer
	total      int
	totalBytes int64
	n          atomic.Int64
	bytes      atomic.Int64
	start      time.Time
	quit       chan struct{}
	wg         sync.WaitGroup
	tty        bool
}

func newProgress(out io.Writer, total int, totalBytes int64) *progress {
	p := &progress{out: out, total: total, totalBytes: totalBytes, start: time.Now(), quit: make(chan struct{})}
	if f, ok := out.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	if total == 0 {
		return p
	}
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.print(false)
			}
		}
	}()
	return p
}

func (p *progress) done(size int64) {
	p.n.Add(1)
	p.bytes.Add(size)
}

func (p *progress) line() string {
	n, b := p.n.Load(), p.bytes.Load()
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(b) / el
	}
	width := 24
	filled := 0
	if p.total > 0 {
		filled = int(n) * width / p.total
	}
	return fmt.Sprintf("site: upload [%s%s] %d/%d files, %s/%s, %s/s",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), n, p.total, humanBytes(b), humanBytes(p.totalBytes), humanBytes(int64(rate)))
}

func (p *progress) print(final bool) {
	switch {
	case p.tty && final:
		fmt.Fprintf(p.out, "\r%s\n", p.line())
	case p.tty:
		fmt.Fprintf(p.out, "\r%s", p.line())
	default:
		fmt.Fprintln(p.out, p.line())
	}
}

func (p *progress) stop() {
	if p.total == 0 {
		return
	}
	select {
	case <-p.quit:
		return
	default:
	}
	close(p.quit)
	p.wg.Wait()
	p.print(true)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
