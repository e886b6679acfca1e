package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuOf is the user+system CPU time process pid (0: this process) has used
// so far, from /proc/<pid>/stat (in USER_HZ ticks of 10 ms) or getrusage;
// zero if it cannot be read. CPU time per read is what stays put on a
// shared, noisy machine, where throughput moves with everything else.
func cpuOf(pid int) time.Duration {
	if pid == 0 {
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
			return 0
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // the name may hold spaces
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// cpuSince returns a function that, called after warm has passed, gives
// the CPU time each of pids used from warm until then.
func cpuSince(pids []int, warm time.Duration) func() []time.Duration {
	start := make(chan []time.Duration, 1)
	go func() {
		time.Sleep(warm)
		t := make([]time.Duration, len(pids))
		for i, p := range pids {
			t[i] = cpuOf(p)
		}
		start <- t
	}()
	return func() []time.Duration {
		t0 := <-start
		t := make([]time.Duration, len(pids))
		for i, p := range pids {
			t[i] = cpuOf(p) - t0[i]
		}
		return t
	}
}
