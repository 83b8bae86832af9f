package ec2

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// Communicator runs commands on an instance through SSM Run Command and moves files through
// S3: an upload is put to the staging bucket and fetched by the instance from a presigned
// URL; a command's full stdout and stderr are put back by the instance to presigned URLs
// (GetCommandInvocation returns at most 24,000 characters of stdout and 8,000 of stderr).
// Nothing listens on the instance: no SSH, no inbound port, no session-manager-plugin.
type Communicator struct {
	InstanceID string
	Bucket     string
	Prefix     string // key prefix of this build's staged objects, ends in "/"
	SSM        SSMAPI
	S3         S3API
	Presign    Presigner
	// Timeout bounds one command (and the validity of its presigned URLs).
	Timeout time.Duration
	// Poll is the interval between GetCommandInvocation calls (default 2s).
	Poll time.Duration

	mu     sync.Mutex
	staged []string // keys to delete in Cleanup
}

var _ packersdk.Communicator = (*Communicator)(nil)

func (c *Communicator) key(name string) string {
	k := c.Prefix + name
	c.mu.Lock()
	c.staged = append(c.staged, k)
	c.mu.Unlock()
	return k
}

// Staged returns the keys this communicator created.
func (c *Communicator) Staged() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.staged...)
}

// DeleteStaged removes every staged object; run by the provisioning step's Cleanup.
func (c *Communicator) DeleteStaged(ctx context.Context) error {
	var errs []error
	for _, k := range c.Staged() {
		if _, err := c.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(k)}); err != nil {
			errs = append(errs, fmt.Errorf("delete s3://%s/%s: %w", c.Bucket, k, err))
		}
	}
	c.mu.Lock()
	c.staged = nil
	c.mu.Unlock()
	return errors.Join(errs...)
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (c *Communicator) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 30 * time.Minute
}

func (c *Communicator) presignGet(ctx context.Context, key string) (string, error) {
	r, err := c.Presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(key)}, s3.WithPresignExpires(c.timeout()+10*time.Minute))
	if err != nil {
		return "", fmt.Errorf("presign s3://%s/%s: %w", c.Bucket, key, err)
	}
	return r.URL, nil
}

func (c *Communicator) presignPut(ctx context.Context, key string) (string, error) {
	r, err := c.Presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(key)}, s3.WithPresignExpires(c.timeout()+10*time.Minute))
	if err != nil {
		return "", fmt.Errorf("presign s3://%s/%s: %w", c.Bucket, key, err)
	}
	return r.URL, nil
}

// Start runs cmd.Command on the instance with /bin/sh. It returns once the command is sent;
// the exit status and output arrive through cmd.SetExited, cmd.Stdout and cmd.Stderr.
func (c *Communicator) Start(ctx context.Context, cmd *packersdk.RemoteCmd) error {
	id := randomID()
	outKey, errKey := c.key("out/"+id+".stdout"), c.key("out/"+id+".stderr")
	outURL, err := c.presignPut(ctx, outKey)
	if err != nil {
		return err
	}
	errURL, err := c.presignPut(ctx, errKey)
	if err != nil {
		return err
	}
	script := wrapCommand(id, cmd.Command, outURL, errURL)
	commandID, err := c.send(ctx, script)
	if err != nil {
		return err
	}
	go func() {
		code, inv, err := c.wait(ctx, commandID)
		stdout, stderr := c.fetchOutput(ctx, outKey), c.fetchOutput(ctx, errKey)
		if stdout == nil && inv != nil {
			stdout = []byte(aws.ToString(inv.StandardOutputContent))
		}
		if stderr == nil && inv != nil {
			stderr = []byte(aws.ToString(inv.StandardErrorContent))
		}
		if err != nil {
			stderr = append(stderr, []byte("\nzops-ec2: "+err.Error()+"\n")...)
		}
		if cmd.Stdout != nil {
			cmd.Stdout.Write(stdout)
		}
		if cmd.Stderr != nil {
			cmd.Stderr.Write(stderr)
		}
		cmd.SetExited(code)
	}()
	return nil
}

// wrapCommand is the script SSM runs: the command goes into a file through a quoted here-doc
// (so nothing in it is expanded twice), runs with its output in files, and the files are put
// to S3 before the script exits with the command's status. The last lines are echoed too, so
// the SSM console shows something even if S3 is unreachable.
func wrapCommand(id, command, outURL, errURL string) string {
	eof := "ZOPS_EOF_" + id
	dir := "/var/tmp/zops-cmd-" + id
	return strings.Join([]string{
		"set +e",
		"umask 077",
		"mkdir -p " + dir,
		"cat > " + dir + "/cmd.sh <<'" + eof + "'",
		command,
		eof,
		"/bin/sh " + dir + "/cmd.sh > " + dir + "/stdout 2> " + dir + "/stderr < /dev/null",
		"rc=$?",
		"curl -fsS -X PUT --upload-file " + dir + "/stdout " + shellQuote(outURL) + " || echo 'zops-ec2: could not upload stdout' >&2",
		"curl -fsS -X PUT --upload-file " + dir + "/stderr " + shellQuote(errURL) + " || echo 'zops-ec2: could not upload stderr' >&2",
		"tail -c 4000 " + dir + "/stdout",
		"tail -c 4000 " + dir + "/stderr >&2",
		"rm -rf " + dir,
		"exit $rc",
	}, "\n")
}

func (c *Communicator) send(ctx context.Context, script string) (string, error) {
	secs := int64(c.timeout() / time.Second)
	out, err := c.SSM.SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName:   aws.String("AWS-RunShellScript"),
		InstanceIds:    []string{c.InstanceID},
		Parameters:     map[string][]string{"commands": {script}, "executionTimeout": {fmt.Sprint(secs)}},
		TimeoutSeconds: aws.Int32(600), // to be delivered, not to finish
		Comment:        aws.String("zops-ec2 provisioning"),
	})
	if err != nil {
		return "", fmt.Errorf("ssm send-command to %s: %w", c.InstanceID, err)
	}
	return aws.ToString(out.Command.CommandId), nil
}

// wait polls the invocation until it ends and returns the exit code; an invocation that
// never ran (timed out, cancelled, undeliverable) is exit 255 with an error.
func (c *Communicator) wait(ctx context.Context, commandID string) (int, *ssm.GetCommandInvocationOutput, error) {
	poll := c.Poll
	if poll == 0 {
		poll = 2 * time.Second
	}
	deadline := time.Now().Add(c.timeout() + 5*time.Minute)
	for {
		inv, err := c.SSM.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(commandID), InstanceId: aws.String(c.InstanceID)})
		var notYet *ssmtypes.InvocationDoesNotExist
		switch {
		case errors.As(err, &notYet):
			// Right after SendCommand the invocation is not visible yet.
		case err != nil:
			return 255, nil, fmt.Errorf("ssm get-command-invocation %s: %w", commandID, err)
		default:
			switch inv.Status {
			case ssmtypes.CommandInvocationStatusSuccess, ssmtypes.CommandInvocationStatusFailed:
				return int(inv.ResponseCode), inv, nil
			case ssmtypes.CommandInvocationStatusTimedOut, ssmtypes.CommandInvocationStatusCancelled, ssmtypes.CommandInvocationStatusCancelling:
				return 255, inv, fmt.Errorf("command %s on %s ended %s (%s)", commandID, c.InstanceID, inv.Status, aws.ToString(inv.StatusDetails))
			}
		}
		if time.Now().After(deadline) {
			return 255, inv, fmt.Errorf("command %s on %s did not finish within %s", commandID, c.InstanceID, c.timeout())
		}
		select {
		case <-ctx.Done():
			return 255, inv, ctx.Err()
		case <-time.After(poll):
		}
	}
}

func (c *Communicator) fetchOutput(ctx context.Context, key string) []byte {
	out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil
	}
	return b
}

// run executes a helper command and fails unless it exits 0.
func (c *Communicator) run(ctx context.Context, command string) error {
	var stderr bytes.Buffer
	cmd := &packersdk.RemoteCmd{Command: command, Stderr: &stderr}
	if err := c.Start(ctx, cmd); err != nil {
		return err
	}
	if code := cmd.Wait(); code != 0 {
		return fmt.Errorf("%s: exit %d: %s", command, code, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Upload puts r into the staging bucket and has the instance fetch it to dst.
func (c *Communicator) Upload(dst string, r io.Reader, fi *os.FileInfo) error {
	ctx := context.Background()
	key := c.key("up/" + randomID() + "-" + path.Base(dst))
	body, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("upload %s: %w", dst, err)
	}
	if _, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		return fmt.Errorf("upload %s: stage s3://%s/%s: %w", dst, c.Bucket, key, err)
	}
	url, err := c.presignGet(ctx, key)
	if err != nil {
		return err
	}
	mode := ""
	if fi != nil && *fi != nil {
		mode = fmt.Sprintf(" && chmod %o %s", (*fi).Mode().Perm(), shellQuote(dst))
	}
	return c.run(ctx, fmt.Sprintf("mkdir -p %s && curl -fsS -o %s %s%s", shellQuote(path.Dir(dst)), shellQuote(dst), shellQuote(url), mode))
}

// UploadDir copies src to dst on the instance as one tarball. As with the file provisioner:
// "src/" puts src's contents into dst, "src" puts the directory itself into dst.
func (c *Communicator) UploadDir(dst string, src string, exclude []string) error {
	ctx := context.Background()
	base := ""
	if !strings.HasSuffix(src, "/") {
		base = filepath.Base(src)
	}
	var buf bytes.Buffer
	if err := tarDir(&buf, filepath.Clean(src), base, exclude); err != nil {
		return fmt.Errorf("upload %s: %w", src, err)
	}
	key := c.key("up/" + randomID() + ".tar.gz")
	if _, err := c.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes())}); err != nil {
		return fmt.Errorf("upload %s: stage s3://%s/%s: %w", src, c.Bucket, key, err)
	}
	url, err := c.presignGet(ctx, key)
	if err != nil {
		return err
	}
	return c.run(ctx, fmt.Sprintf("mkdir -p %s && curl -fsS %s | tar -xzf - -C %s", shellQuote(dst), shellQuote(url), shellQuote(dst)))
}

// Download has the instance put src to S3 and copies it into w.
func (c *Communicator) Download(src string, w io.Writer) error {
	ctx := context.Background()
	key := c.key("down/" + randomID() + "-" + path.Base(src))
	url, err := c.presignPut(ctx, key)
	if err != nil {
		return err
	}
	if err := c.run(ctx, fmt.Sprintf("curl -fsS -X PUT --upload-file %s %s", shellQuote(src), shellQuote(url))); err != nil {
		return fmt.Errorf("download %s: %w", src, err)
	}
	out, err := c.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("download %s: %w", src, err)
	}
	defer out.Body.Close()
	_, err = io.Copy(w, out.Body)
	return err
}

// DownloadDir is not needed by the box template.
func (c *Communicator) DownloadDir(src string, dst string, exclude []string) error {
	return errors.New("zops-ec2: DownloadDir is not supported; download single files")
}

// tarDir writes a gzipped tar of dir, entries under prefix (empty: at the top).
func tarDir(w io.Writer, dir, prefix string, exclude []string) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, ex := range exclude {
			if m, _ := filepath.Match(ex, rel); m {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		name := filepath.ToSlash(filepath.Join(prefix, rel))
		if name == "." || name == "" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = name
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
