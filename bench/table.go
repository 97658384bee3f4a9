package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints results as an aligned table, one row per run.
func WriteTable(w io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tnodes\tmessages\tbaseline/s\taccepted/s\tdelivered/s\tratio\te2e p50 ms\te2e p99 ms\tenq p99 ms\tlost\tdups\tfailover ms\tcpu s\tpeak rss MB\tanon rss MB\tbacklog\tpending at end\trss MB at end\theap MB at end\t")
	for _, r := range results {
		failover := "-"
		if r.Scenario == "failover" {
			failover = fmt.Sprintf("%.0f", r.FailoverMS)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.2f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%s\t%.1f\t%.0f\t%.0f\t%d\t%d\t%.0f\t%.0f\t\n",
			r.Scenario, r.Nodes, r.Messages, r.BaselinePerS, r.AcceptedPerS, r.DeliveredPerS, r.DeliveredRatio,
			r.E2EP50, r.E2EP99, r.EnqP99, r.Lost, r.Dups, failover, r.CPUSeconds, r.PeakRSSMB, r.AnonRSSMB,
			r.Backlog, r.PendingAtEnd, r.EndMemory.RSSMB, r.EndMemory.HeapMB)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeCostTable(w, results)
}

// writeCostTable prints what each run cost per message: the servers' CPU,
// allocations and instructions per delivered message, and the bench
// process's own CPU per message beside the baseline's per exchange.
func writeCostTable(w io.Writer, results []*Result) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tnodes\tdelivered/s\tserver cpu µs/msg\tserver allocs/msg\tserver instr/msg\tbench cpu µs/msg\tbaseline cpu µs/exch\tbench/baseline\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%s\t%s\t%.0f\t%.0f\t%.2f\t\n",
			r.Scenario, r.Nodes, r.DeliveredPerS, r.ServerCPUPerMsgUS, optional(r.ServerAllocsPerMsg, "%.0f"),
			optional(r.ServerInstrPerMsg, "%.3g"), r.BenchCPUPerMsgUS, r.BaselineCPUPerExchangeUS, r.BenchCPURatio)
	}
	return tw.Flush()
}

// optional formats *v, or "-" when it is nil.
func optional(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}
