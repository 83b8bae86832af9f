package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"
)

// Failure is one failed job, as reported to people.
type Failure struct {
	Job      string // e.g. "backup:run"
	Host     string
	Err      error
	LogLines []string // the last lines of the job's log
	At       time.Time
}

// Subject is the email subject.
func (f Failure) Subject() string {
	return fmt.Sprintf("[zmanim-ops] %s FAILED on %s", f.Job, f.Host)
}

// Body is the plain-text email body.
func (f Failure) Body() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Job:   %s\nHost:  %s\nTime:  %s\nError: %v\n\nLast log lines:\n", f.Job, f.Host, f.At.UTC().Format(time.RFC3339), f.Err)
	for _, l := range f.LogLines {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("\nRe-run by hand with `go tool mage " + f.Job + "` (or `zops-backup " + strings.TrimPrefix(f.Job, "backup:") + "` on the box).\n")
	return b.String()
}

// Notifier tells people that a job failed. Notify returns an error when the message could
// not be handed over; the job's own error is never replaced by it.
type Notifier interface {
	Notify(ctx context.Context, f Failure) error
}

// SESAPI is the part of the SES v2 client the notifier uses.
type SESAPI interface {
	SendEmail(ctx context.Context, in *sesv2.SendEmailInput, optFns ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

var _ SESAPI = (*sesv2.Client)(nil)

// SESNotifier sends failure emails through SES v2 SendEmail.
type SESNotifier struct {
	Client   SESAPI
	From, To string
}

var _ Notifier = (*SESNotifier)(nil)

// Notify sends one email.
func (n *SESNotifier) Notify(ctx context.Context, f Failure) error {
	if n.From == "" || n.To == "" {
		return errors.New("notify: notify.from and notify.to must be set in the configuration")
	}
	_, err := n.Client.SendEmail(ctx, &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(n.From),
		Destination:      &sestypes.Destination{ToAddresses: []string{n.To}},
		Content: &sestypes.EmailContent{Simple: &sestypes.Message{
			Subject: &sestypes.Content{Data: aws.String(f.Subject()), Charset: aws.String("UTF-8")},
			Body:    &sestypes.Body{Text: &sestypes.Content{Data: aws.String(f.Body()), Charset: aws.String("UTF-8")}},
		}},
	})
	if err != nil {
		return fmt.Errorf("send failure email to %s via SES: %w", n.To, err)
	}
	return nil
}

// Tail is an io.Writer keeping the last N lines written to it, for failure emails.
type Tail struct {
	N       int
	mu      sync.Mutex
	partial []byte
	lines   []string
}

// Write implements io.Writer.
func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, string(t.partial[:i]))
		t.partial = t.partial[i+1:]
		if n := max(t.N, 1); len(t.lines) > n {
			t.lines = t.lines[len(t.lines)-n:]
		}
	}
	return len(p), nil
}

// Lines returns the kept lines, oldest first.
func (t *Tail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
	}
	return out
}

// Do runs one job; when it fails the Notifier gets the job name, host, error and the last log
// lines. The job's error is returned (joined with a notification error, if any).
func (j *Job) Do(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	tail := &Tail{N: 30}
	orig := j.Log
	if orig != nil {
		j.Log = multiWriter{orig, tail}
	} else {
		j.Log = tail
	}
	if j.Repo != nil && j.Repo.Log == nil {
		j.Repo.Log = j.Log
		defer func() { j.Repo.Log = nil }()
	}
	defer func() { j.Log = orig }()
	err := j.exclusive(name, fn)(ctx)
	if err == nil {
		return nil
	}
	j.logf("%s failed: %v", name, err)
	if j.Notifier == nil {
		return err
	}
	// Notify even when the job's context was cancelled (timeout): use a fresh short deadline.
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	f := Failure{Job: name, Host: j.Host, Err: err, LogLines: tail.Lines(), At: j.now()}
	if nerr := j.Notifier.Notify(nctx, f); nerr != nil {
		return errors.Join(err, nerr)
	}
	j.logf("failure email sent")
	return err
}

type multiWriter []interface{ Write([]byte) (int, error) }

func (m multiWriter) Write(p []byte) (int, error) {
	for _, w := range m {
		_, _ = w.Write(p)
	}
	return len(p), nil
}
