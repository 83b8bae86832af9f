package box

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// StartNice is the nice value a new API process starts at: below the process that serves,
// until it reports READY=1 and gets the supervisor's own priority back. A release starts the
// new binary while the old one carries the load; on a two-core box the newcomer's start-up
// (Go runtime, connection pools, keys) would otherwise take CPU from the requests being
// served, which bench:release saw as a p99 spike at the swap. A process not ready after
// StartLowFor gets its priority back anyway, so a busy box does not starve a release.
const StartNice = 10

// StartLowFor bounds the low-priority start (see StartNice).
const StartLowFor = time.Second

// niceness returns the calling thread's nice value. The raw syscall, which Go's
// syscall.Getpriority is, returns 20 - nice.
func niceness() int {
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		return 0
	}
	return 20 - p
}

// canRaiseTo reports whether a process of ours may later be set back to nice (lower is
// higher priority): root may, others only down to the RLIMIT_NICE soft limit, which the API
// unit sets with LimitNICE= (inherited by the processes the supervisor starts).
func canRaiseTo(nice int) bool {
	if os.Geteuid() == 0 {
		return true
	}
	var rl syscall.Rlimit
	const rlimitNice = 13 // RLIMIT_NICE
	if err := syscall.Getrlimit(rlimitNice, &rl); err != nil {
		return false
	}
	return int(rl.Cur) >= 20-nice
}

// StartAtNice starts cmd (not yet started) at nice, as a unit's Nice= does, without lowering
// the caller's own priority (see startLow). The twin's backup scheduler uses it to run the box's
// timer jobs at their units' priority.
func StartAtNice(nice int, start func() error) error {
	if nice == 0 {
		return start()
	}
	return startLow(nice, start)
}

// startLow runs start (an exec.Cmd's Start) on a thread of its own set to nice: the child
// inherits the thread's priority from its first instruction, so there is no window at the
// old priority and no thread it could have spawned before being reniced. The thread is
// never handed back to the Go scheduler (the goroutine ends locked to it, which ends the
// thread), so the supervisor's own threads keep their priority.
func startLow(nice int, start func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the thread exits with this goroutine
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), nice)
		errc <- start()
	}()
	return <-errc
}

// SetNice sets every thread of process pid to nice; threads it creates later inherit it
// (`zops-box install` lowers itself this way, so a release's download and hashing on the box
// yield to the API serving).
func SetNice(pid, nice int) error { return setNice(pid, nice) }

// setNice sets every thread of process pid to nice; threads it creates later inherit it.
func setNice(pid, nice int) error {
	tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		return err
	}
	var first error
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// processNice returns the nice value of process pid's main thread (for tests).
func processNice(pid int) (int, error) {
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, pid)
	if err != nil {
		return 0, err
	}
	return 20 - p, nil
}
