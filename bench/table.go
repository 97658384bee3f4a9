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
	return tw.Flush()
}
