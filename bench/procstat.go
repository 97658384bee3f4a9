package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat CPU times; it is 100
// on every Linux platform Go supports.
const clockTicks = 100

// ProcStats are a process's resource figures from /proc.
type ProcStats struct {
	CPUSeconds float64 // user + system
	PeakRSSMB  float64 // VmHWM: includes bbolt's memory-mapped file pages
	RSSMB      float64 // VmRSS now, file pages included
	AnonRSSMB  float64 // RssAnon now: the heap and stacks, without file pages
}

// readProcStats reads /proc/<pid>/stat and /proc/<pid>/status.
func readProcStats(pid int) (ProcStats, error) {
	var st ProcStats
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields overall.
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return st, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	st.CPUSeconds = (utime + stime) / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	mb := func(v string) float64 {
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		return kb / 1024
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			st.PeakRSSMB = mb(v)
		} else if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			st.RSSMB = mb(v)
		} else if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			st.AnonRSSMB = mb(v)
		}
	}
	return st, nil
}
