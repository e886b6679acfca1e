package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPU time per operation is the figure that stays put on a shared, noisy
// machine: throughput moves with what else runs, the work each read costs
// does not. clockTick is the unit of /proc/<pid>/stat's CPU times
// (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU is the user+system CPU time process pid has used so far, from
// /proc/<pid>/stat; zero if that cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: count fields after ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime+stime) * clockTick
}

// selfCPU is the user+system CPU time this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuWindow measures the CPU time of processes pids (0 is this process)
// from after warm until the function it returns is called, which returns
// each one's share in pids' order.
func cpuWindow(pids []int, warm time.Duration) func() []time.Duration {
	read := func() []time.Duration {
		t := make([]time.Duration, len(pids))
		for i, p := range pids {
			if p == 0 {
				t[i] = selfCPU()
			} else {
				t[i] = procCPU(p)
			}
		}
		return t
	}
	start := make(chan []time.Duration, 1)
	go func() {
		time.Sleep(warm)
		start <- read()
	}()
	return func() []time.Duration {
		t0, t1 := <-start, read()
		for i := range t1 {
			t1[i] -= t0[i]
		}
		return t1
	}
}

// perOp is d spread over n operations, in microseconds, as a table cell.
func perOp(d time.Duration, n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(d.Microseconds())/float64(n), 'f', 0, 64)
}
