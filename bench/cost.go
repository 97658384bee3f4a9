package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cost holds what a run cost per message: the servers' CPU, allocations
// and (where the machine counts them) instructions, and the load
// generator's own CPU beside the baseline's client and receiver.
type Cost struct {
	// ServerCPUPerMsgUS is the servers' CPU (summed over the nodes) per
	// delivered message, in µs.
	ServerCPUPerMsgUS float64 `json:"server_cpu_us_per_message"`
	// ServerAllocsPerMsg is the servers' heap allocations (Go's
	// go_memstats_mallocs_total, summed over the nodes) per delivered
	// message; null when /metrics did not give it.
	ServerAllocsPerMsg *float64 `json:"server_allocs_per_message"`
	// ServerInstrPerMsg is the servers' instructions (perf stat -e
	// instructions) per delivered message; null where the machine does not
	// count them, and Instructions says why.
	ServerInstrPerMsg *float64 `json:"server_instructions_per_message"`
	// Instructions is "counted" or why not: "unsupported" (perf prints
	// <not supported>, as in most VMs), "no perf", or an error.
	Instructions string `json:"instructions"`

	// BenchCPUSeconds is the bench process's own CPU (its clients and its
	// receiver) during the measured run, and BenchCPUPerMsgUS that per
	// message, in µs.
	BenchCPUSeconds  float64 `json:"bench_cpu_seconds"`
	BenchCPUPerMsgUS float64 `json:"bench_cpu_us_per_message"`
	// BaselineCPUSeconds is the bench process's CPU during the baseline:
	// its plain client and the receiver; BaselineCPUPerExchangeUS that per
	// exchange, in µs.
	BaselineCPUSeconds       float64 `json:"baseline_cpu_seconds"`
	BaselineCPUPerExchangeUS float64 `json:"baseline_cpu_us_per_exchange"`
	// BenchCPURatio is BenchCPUPerMsgUS / BaselineCPUPerExchangeUS: what
	// the load generator costs the machine per message compared with the
	// cheapest client and receiver doing one exchange each.
	BenchCPURatio float64 `json:"bench_cpu_ratio"`
}

// perMessage returns total/n, or 0 when n is not positive.
func perMessage(total float64, n int) float64 {
	if n <= 0 {
		return 0
	}
	return total / float64(n)
}

// fillCost computes the per-message figures from the totals: serverCPU
// seconds, server mallocs and instructions (negative when unknown) for
// delivered messages, the bench process's CPU seconds for messages and the
// baseline's for exchanges.
func (c *Cost) fill(serverCPU, mallocs, instructions float64, delivered int, benchCPU float64, messages int, baselineCPU float64, exchanges int) {
	c.ServerCPUPerMsgUS = perMessage(serverCPU*1e6, delivered)
	if mallocs >= 0 && delivered > 0 {
		v := perMessage(mallocs, delivered)
		c.ServerAllocsPerMsg = &v
	}
	if instructions >= 0 && delivered > 0 {
		v := perMessage(instructions, delivered)
		c.ServerInstrPerMsg = &v
	}
	c.BenchCPUSeconds, c.BaselineCPUSeconds = benchCPU, baselineCPU
	c.BenchCPUPerMsgUS = perMessage(benchCPU*1e6, messages)
	c.BaselineCPUPerExchangeUS = perMessage(baselineCPU*1e6, exchanges)
	if c.BaselineCPUPerExchangeUS > 0 {
		c.BenchCPURatio = c.BenchCPUPerMsgUS / c.BaselineCPUPerExchangeUS
	}
}

// cpuMeter measures this process's CPU over a phase and, when dir is set,
// takes a CPU profile of it (name.prof in dir).
type cpuMeter struct {
	start   time.Duration
	prof    *os.File
	profErr error
}

func startCPUMeter(dir, name string) *cpuMeter {
	m := &cpuMeter{}
	if dir != "" {
		f, err := os.Create(filepath.Join(dir, name+".prof"))
		if err == nil {
			if err = pprof.StartCPUProfile(f); err != nil {
				f.Close()
			} else {
				m.prof = f
			}
		}
		m.profErr = err
	}
	m.start = selfCPU()
	return m
}

// stop returns the CPU seconds used since the start and ends the profile.
func (m *cpuMeter) stop() float64 {
	used := selfCPU() - m.start
	if m.prof != nil {
		pprof.StopCPUProfile()
		m.prof.Close()
		m.prof = nil
	}
	return used.Seconds()
}

// parseMetric returns the value of the unlabelled metric name in a
// Prometheus text exposition.
func parseMetric(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("GET /metrics: no metric %s", name)
}

// mallocsMetric counts the heap objects a Go process has allocated; the
// Prometheus Go collector exports it.
const mallocsMetric = "go_memstats_mallocs_total"

// errPerfUnsupported says the machine does not count instructions.
var errPerfUnsupported = errors.New("unsupported")

// parsePerfInstructions reads the instructions count from the output of
// perf stat -x, -e instructions: "<count>,<unit>,instructions,...", or
// "<not supported>,..." / "<not counted>,..." where the machine has no such
// counter (errPerfUnsupported). Comment and blank lines are skipped.
func parsePerfInstructions(out []byte) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ",")
		if len(fields) < 3 || !strings.HasPrefix(fields[2], "instructions") {
			continue
		}
		switch v := fields[0]; {
		case strings.HasPrefix(v, "<not supported>"), strings.HasPrefix(v, "<not counted>"):
			return 0, errPerfUnsupported
		default:
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("perf stat: bad count %q", v)
			}
			return n, nil
		}
	}
	return 0, errors.New("perf stat: no instructions line")
}

var perfProbe struct {
	once sync.Once
	err  error // nil when perf counts instructions here
}

// perfSupported reports whether perf stat counts instructions on this
// machine, trying it once on a trivial command.
func perfSupported(ctx context.Context) error {
	perfProbe.once.Do(func() {
		path, err := exec.LookPath("perf")
		if err != nil {
			perfProbe.err = errors.New("no perf")
			return
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, path, "stat", "-x,", "-e", "instructions", "--", "true").CombinedOutput()
		if _, perr := parsePerfInstructions(out); perr != nil {
			perfProbe.err = perr
			if err != nil && !errors.Is(perr, errPerfUnsupported) {
				perfProbe.err = fmt.Errorf("perf stat: %v", err)
			}
		}
	})
	return perfProbe.err
}

// perfCounter counts the instructions of some processes with perf stat -p
// from its start until stop.
type perfCounter struct {
	cmd *exec.Cmd
	out string
}

// startPerf starts counting the instructions of pids, or says why it
// cannot.
func startPerf(ctx context.Context, dir string, pids []int) (*perfCounter, error) {
	if err := perfSupported(ctx); err != nil {
		return nil, err
	}
	var list []string
	for _, p := range pids {
		list = append(list, strconv.Itoa(p))
	}
	p := &perfCounter{out: filepath.Join(dir, "perf-stat.csv")}
	p.cmd = exec.Command("perf", "stat", "-x,", "-e", "instructions", "-o", p.out, "-p", strings.Join(list, ","))
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	return p, nil
}

// stop ends the count (perf stat writes its figures on SIGINT) and returns
// it.
func (p *perfCounter) stop() (float64, error) {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
		return 0, errors.New("perf stat did not stop")
	}
	out, err := os.ReadFile(p.out)
	if err != nil {
		return 0, err
	}
	return parsePerfInstructions(out)
}
