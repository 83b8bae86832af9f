// Command zops-backup runs the backup jobs on the box, started by the systemd units in
// deploy/systemd/backup: zops-backup run|verify|drill|wal|base|restore TIME|notify UNIT.
// It is the same code as the `go tool mage backup:*` targets.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shtetl/zmanim-ops/internal/backup"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "zops-backup:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 {
		return errors.New("usage: zops-backup run|verify|drill|wal|base|recover|restore TIME|notify UNIT")
	}
	out := os.Stdout
	switch args[0] {
	case "run":
		return backup.RunTarget(ctx, out)
	case "verify":
		return backup.VerifyTarget(ctx, out)
	case "drill":
		return backup.DrillTarget(ctx, out)
	case "wal":
		return backup.WALTarget(ctx, out)
	case "base":
		return backup.BaseTarget(ctx, out)
	case "recover":
		return backup.RecoverTarget(ctx, out)
	case "restore", "notify":
		if len(args) != 2 {
			return fmt.Errorf("usage: zops-backup %s ARG", args[0])
		}
		if args[0] == "restore" {
			return backup.RestoreTarget(ctx, out, args[1])
		}
		return backup.NotifyTarget(ctx, out, args[1])
	}
	return fmt.Errorf("unknown command %q", args[0])
}
