package backup

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/pgtool"
	"github.com/shtetl/zmanim-ops/internal/restic"
)

// RestoreConfMarker starts the settings Restore appends to the restored cluster's
// postgresql.auto.conf; Recover removes everything from it on before the cluster goes live.
const RestoreConfMarker = "# zops backup:restore: point-in-time recovery into a scratch directory"

// Errors of point-in-time restore.
var (
	ErrScratchFull  = errors.New("scratch restore ran out of disk space")
	ErrNoBase       = errors.New("no base backup older than the target time")
	ErrTargetNotHit = errors.New("the WAL in the repository does not reach the target time")
)

// PITR is a scratch PostgreSQL restored to a point in time and left running for inspection.
type PITR struct {
	Target   time.Time
	Base     string // base snapshot id
	WAL      string // WAL snapshot id
	DataDir  string
	Port     int
	Conn     string // redacted connection URL
	URL      string // connection URL with password: for drivers, never print
	Seconds  float64
	pgCtl    string
	runAs    *syscall.Credential
	LogFile  string
	StopHint string
}

// Stop shuts the scratch server down (its data directory stays for inspection).
func (p *PITR) Stop(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, p.pgCtl, "-D", p.DataDir, "-m", "fast", "-w", "stop")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.runAs}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stop scratch PostgreSQL in %s: %w: %s", p.DataDir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// RestoreOptions tune a point-in-time restore.
type RestoreOptions struct {
	// Dir is the scratch directory (default ScratchDir/pitr-<target>); it must not exist or be empty.
	Dir string
	// Port is the scratch server's port; 0 picks a free one.
	Port int
}

// Restore is backup:restore TIME: the newest base backup finished before target, plus the WAL
// shipped after it, into a scratch data directory with recovery_target_time = target; the
// server is started on a free loopback port and promoted when it reaches the target. The live
// database is only read from the repository, never touched.
//
// A zero target means the latest: all shipped WAL is replayed, then the server is promoted
// (no recovery target, so reaching the end of the archive is success, not ErrTargetNotHit).
func (j *Job) Restore(ctx context.Context, target time.Time, o RestoreOptions) (_ *PITR, err error) {
	start := time.Now()
	latest := target.IsZero()
	if latest {
		target = time.Now()
	}
	p := &PITR{Target: target.UTC()}
	bases, err := j.Repo.Snapshots(ctx, restic.Filter{Tags: []string{TagZops, TagBase}, Host: j.Host})
	if err != nil {
		return nil, fmt.Errorf("restore: list base backups: %w", err)
	}
	wals, err := j.Repo.Snapshots(ctx, restic.Filter{Tags: []string{TagZops, TagWAL}, Host: j.Host})
	if err != nil {
		return nil, fmt.Errorf("restore: list WAL snapshots: %w", err)
	}
	base, wal, err := pickPITR(bases, wals, target)
	if err != nil {
		return nil, err
	}
	p.Base, p.WAL = base.ID, wal.ID
	j.logf("restore: target %s, base %s (%s), WAL %s (%s)", p.Target.Format(time.RFC3339), base.ShortID,
		base.Time.UTC().Format(time.RFC3339), wal.ShortID, wal.Time.UTC().Format(time.RFC3339))

	dir := o.Dir
	if dir == "" {
		dir = filepath.Join(j.ScratchDir, "pitr-"+p.Target.Format("20060102T150405Z"))
	}
	p.DataDir = filepath.Join(dir, "data")
	walDir := filepath.Join(dir, "wal")
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		return nil, fmt.Errorf("restore: %s is not empty; remove it or set ZOPS_BACKUP_RESTORE_DIR", dir)
	}
	for _, d := range []string{p.DataDir, walDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	defer func() {
		if err != nil { // free the scratch space; the server log (if any) stays for reading
			_ = os.RemoveAll(p.DataDir)
			_ = os.RemoveAll(walDir)
		}
	}()
	if err := j.extract(ctx, base.ID, "/base.tar", p.DataDir, false); err != nil {
		return nil, err
	}
	walPath := "/"
	if len(wal.Paths) > 0 {
		walPath = wal.Paths[0]
	}
	if err := j.extract(ctx, wal.ID, walPath, walDir, true); err != nil {
		return nil, err
	}
	major, err := os.ReadFile(filepath.Join(p.DataDir, "PG_VERSION"))
	if err != nil {
		return nil, fmt.Errorf("restore: base backup has no PG_VERSION: %w", err)
	}
	bin, err := pgBinDir(strings.TrimSpace(string(major)))
	if err != nil {
		return nil, err
	}
	p.pgCtl = filepath.Join(bin, "pg_ctl")
	port := o.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	p.Port = port
	for _, f := range []string{"postmaster.pid", "postmaster.opts", "standby.signal"} {
		_ = os.Remove(filepath.Join(p.DataDir, f))
	}
	conf := fmt.Sprintf(`
%s
port = %d
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
archive_mode = off
archive_command = ''
restore_command = 'cp "%s/%%f" "%%p"'
`, RestoreConfMarker, port, dir, walDir)
	if !latest {
		conf += fmt.Sprintf("recovery_target_time = '%s'\nrecovery_target_action = 'promote'\n", p.Target.Format("2006-01-02 15:04:05.999999-07:00"))
	}
	conf += "hot_standby = on\n"
	if err := appendFile(filepath.Join(p.DataDir, "postgresql.auto.conf"), conf); err != nil {
		return nil, j.diskErr(dir, err)
	}
	if err := os.WriteFile(filepath.Join(p.DataDir, "recovery.signal"), nil, 0o600); err != nil {
		return nil, j.diskErr(dir, err)
	}
	if p.runAs, err = pgtool.ServerUser(); err != nil {
		return nil, err
	}
	if p.runAs != nil {
		if err := pgtool.ChownTree(p.runAs, dir); err != nil {
			return nil, fmt.Errorf("restore: chown %s: %w", dir, err)
		}
		if err := reachable(j.ScratchDir, dir); err != nil {
			return nil, err
		}
	}
	p.LogFile = filepath.Join(dir, "postgres.log")
	cmd := exec.CommandContext(ctx, p.pgCtl, "-D", p.DataDir, "-l", p.LogFile, "-w", "-t", "600", "start")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.runAs}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, j.startErr(p, fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out))))
	}
	conn := j.PG
	conn.Host, conn.Port = "127.0.0.1", strconv.Itoa(port)
	if j.PG.IsSocket() {
		// The box connects by socket with peer authentication (no password): the scratch
		// server's socket is in its private directory.
		conn.Host = dir
	}
	p.URL, p.Conn = conn.URL(), conn.Redacted()
	if err := j.waitPromoted(ctx, conn, p.DataDir, 10*time.Minute); err != nil {
		_ = p.Stop(context.WithoutCancel(ctx))
		return nil, j.startErr(p, err)
	}
	p.Seconds = time.Since(start).Seconds()
	p.StopHint = fmt.Sprintf("%s -D %s stop", p.pgCtl, p.DataDir)
	if p.runAs != nil {
		p.StopHint = fmt.Sprintf("su postgres -c '%s'", p.StopHint)
	}
	j.logf("restore: scratch PostgreSQL at %s (data %s) reached %s in %.1fs; stop it with: %s",
		p.Conn, p.DataDir, p.Target.Format(time.RFC3339), p.Seconds, p.StopHint)
	return p, nil
}

// pickPITR chooses the newest base whose backup ended before target, and the WAL snapshot
// holding the segments from that base onwards: the first one taken after the next base
// (shipped before the archive was trimmed), or else the newest.
func pickPITR(bases, wals []restic.Snapshot, target time.Time) (restic.Snapshot, restic.Snapshot, error) {
	end := func(s restic.Snapshot) time.Time {
		if s.Summary != nil && !s.Summary.BackupEnd.IsZero() {
			return s.Summary.BackupEnd
		}
		return s.Time
	}
	sort.Slice(bases, func(a, b int) bool { return bases[a].Time.Before(bases[b].Time) })
	sort.Slice(wals, func(a, b int) bool { return wals[a].Time.Before(wals[b].Time) })
	bi := -1
	for i, b := range bases {
		if !end(b).After(target) {
			bi = i
		}
	}
	if bi < 0 {
		return restic.Snapshot{}, restic.Snapshot{}, fmt.Errorf("%w %s (%d base backups; run `go tool mage backup:base` and choose a later time)", ErrNoBase, target.UTC().Format(time.RFC3339), len(bases))
	}
	base := bases[bi]
	var cands []restic.Snapshot
	for _, w := range wals {
		if w.Time.After(base.Time) {
			cands = append(cands, w)
		}
	}
	if len(cands) == 0 {
		return base, restic.Snapshot{}, fmt.Errorf("%w: no WAL was shipped after base %s (run `go tool mage backup:wal`)", ErrTargetNotHit, base.ShortID)
	}
	if bi+1 < len(bases) {
		next := bases[bi+1].Time
		for _, w := range cands {
			if w.Time.After(next) {
				return base, w, nil
			}
		}
	}
	return base, cands[len(cands)-1], nil
}

// extract streams `restic dump id path` (a file holding a tar, or a directory restic renders
// as a tar) into dir; flat puts every regular file directly in dir.
func (j *Job) extract(ctx context.Context, id, path, dir string, flat bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	dumpErr := make(chan error, 1)
	go func() {
		err := j.Repo.Dump(ctx, id, path, pw)
		pw.CloseWithError(err)
		dumpErr <- err
	}()
	err := untar(pr, dir, flat)
	if err != nil {
		cancel()
		pr.CloseWithError(err)
		<-dumpErr
		return j.diskErr(dir, fmt.Errorf("restore: unpack %s of snapshot %s: %w", path, short(id), err))
	}
	_, _ = io.Copy(io.Discard, pr)
	if err := <-dumpErr; err != nil {
		return fmt.Errorf("restore: restic dump %s %s: %w", short(id), path, err)
	}
	return nil
}

func untar(r io.Reader, dir string, flat bool) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + h.Name)[1:] // no escaping the directory
		if flat {
			if h.Typeflag != tar.TypeReg {
				continue
			}
			name = filepath.Base(name)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		}
	}
}

// diskErr turns "no space left on device" into ErrScratchFull with what to do.
func (j *Job) diskErr(dir string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no space left on device") {
		var st syscall.Statfs_t
		free := ""
		if syscall.Statfs(dir, &st) == nil {
			free = fmt.Sprintf(" (%d MiB free of %d MiB)", st.Bavail*uint64(st.Bsize)>>20, st.Blocks*uint64(st.Bsize)>>20)
		}
		return fmt.Errorf("%w in %s%s: free space there or point ZOPS_BACKUP_SCRATCH at a larger disk; the live database was not touched: %w", ErrScratchFull, dir, free, err)
	}
	return err
}

func (j *Job) startErr(p *PITR, err error) error {
	logTail := ""
	if b, rerr := os.ReadFile(p.LogFile); rerr == nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		var keep []string
		for _, l := range lines {
			if strings.Contains(l, "FATAL") || strings.Contains(l, "PANIC") || strings.Contains(l, "ERROR") || strings.Contains(l, "recovery stopping") {
				keep = append(keep, l)
			}
		}
		if len(keep) > 5 {
			keep = keep[len(keep)-5:]
		}
		logTail = strings.Join(keep, "\n")
	}
	if strings.Contains(logTail, "recovery ended before configured recovery target was reached") {
		return fmt.Errorf("%w %s: ship WAL past that time first (`go tool mage backup:wal`) or choose an earlier time: %s", ErrTargetNotHit, p.Target.Format(time.RFC3339), logTail)
	}
	if strings.Contains(logTail, "No space left") || strings.Contains(logTail, "no space left") {
		return j.diskErr(p.DataDir, fmt.Errorf("%s: %w", logTail, syscall.ENOSPC))
	}
	return fmt.Errorf("restore: start scratch PostgreSQL in %s (log %s): %w\n%s", p.DataDir, p.LogFile, err, logTail)
}

// waitPromoted waits until the server leaves recovery, or fails as soon as it has exited
// (e.g. the target is beyond the end of the WAL).
func (j *Job) waitPromoted(ctx context.Context, conn pgtool.Conn, dataDir string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
			return errors.New("scratch server exited during recovery")
		}
		v, err := j.queryOne(ctx, conn, "SELECT pg_is_in_recovery()")
		if err == nil && (v == "f" || v == "false") {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("scratch server did not finish recovery in %s: %v", limit, last)
}

// queryOne returns the first column of the first row of sql as text. On the box (root, a
// socket connection with peer authentication) it runs psql as the server's user, since
// root has no role; elsewhere it connects with pgx.
func (j *Job) queryOne(ctx context.Context, conn pgtool.Conn, sql string) (string, error) {
	if os.Geteuid() == 0 && conn.IsSocket() {
		cred, err := pgtool.ServerUser()
		if err != nil {
			return "", err
		}
		prog, err := pgtool.FindProgram(ctx, "psql", 0)
		if err != nil {
			return "", err
		}
		env, cleanup, err := conn.Env(j.ScratchDir)
		defer cleanup()
		if err != nil {
			return "", err
		}
		cmd := exec.CommandContext(ctx, prog.Path, "-X", "-At", "-c", sql)
		cmd.Env, cmd.Dir = env, "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("psql %s: %w: %s", conn.Redacted(), err, strings.TrimSpace(string(out)))
		}
		return strings.TrimSpace(string(out)), nil
	}
	c, err := pgx.Connect(ctx, conn.URL())
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	var v any
	if err := c.QueryRow(ctx, sql).Scan(&v); err != nil {
		return "", err
	}
	return fmt.Sprint(v), nil
}

// pgBinDir finds the server programs of one major version.
func pgBinDir(major string) (string, error) {
	cands := []string{config.PGBinDir(), "/usr/lib/postgresql/" + major + "/bin", "/usr/pgsql-" + major + "/bin"}
	for _, d := range cands {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("restore: no PostgreSQL %s server programs (pg_ctl) found; install postgresql-%s or set ZOPS_PG_BIN_DIR", major, major)
}

// reachable makes sure the postgres user can enter dir: our own scratch directory is opened
// for traversal (0711, no listing); any other ancestor lacking o+x is reported.
func reachable(scratch, dir string) error {
	if scratch != "" {
		if fi, err := os.Stat(scratch); err == nil && fi.Mode().Perm()&0o001 == 0 {
			_ = os.Chmod(scratch, fi.Mode().Perm()|0o011)
		}
	}
	abs, _ := filepath.Abs(dir)
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("restore: the postgres user cannot enter %s (mode %v): run `chmod o+x %s` or set ZOPS_BACKUP_RESTORE_DIR elsewhere", d, fi.Mode().Perm(), d)
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("restore: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
