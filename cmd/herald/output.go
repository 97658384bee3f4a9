package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Output formats of --output. JSON is the default, whatever stdout is: the
// API's answer, indented, is what scripts parse, and a command's output
// does not change with where it goes. A table is for people.
const (
	outputJSON  = "json"
	outputTable = "table"
)

// outputFlag is --output on a command that can print a table.
type outputFlag struct {
	fs    *flag.FlagSet
	value string
}

// addOutputFlag registers --output, defaulting to HERALD_OUTPUT, then json.
func addOutputFlag(fs *flag.FlagSet) *outputFlag {
	o := &outputFlag{fs: fs}
	def := outputJSON
	if v := os.Getenv("HERALD_OUTPUT"); v != "" {
		def = v
	}
	fs.StringVar(&o.value, "output", def, "`format` of the answer: json (the API's answer, indented; for scripts) "+
		"or table (aligned columns; for people) (env HERALD_OUTPUT)")
	return o
}

// check returns a usage error for a format other than json or table.
func (o *outputFlag) check() error {
	if o.value == outputJSON || o.value == outputTable {
		return nil
	}
	set := false
	o.fs.Visit(func(f *flag.Flag) { set = set || f.Name == "output" })
	if !set {
		return usagef("HERALD_OUTPUT=%q: want json or table", o.value)
	}
	return usagef("--output %q: want json or table", o.value)
}

// callAndShow makes one API call and prints its answer as JSON, or, with
// --output table, through table.
func callAndShow(ctx context.Context, c *apiClient, method, path string, body any, stdout io.Writer,
	out *outputFlag, table func(io.Writer, []byte) error) error {
	data, err := c.do(ctx, method, path, body, nil)
	if err != nil {
		return err
	}
	if out == nil || out.value != outputTable {
		if len(data) == 0 {
			return nil
		}
		return printJSON(stdout, data)
	}
	return table(stdout, data)
}

// decodeAnswer decodes an answer for a table.
func decodeAnswer(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("cannot show the answer as a table (%v); --output json prints it as it came", err)
	}
	return nil
}

// newTable returns a writer of aligned columns, two spaces apart; the
// caller writes tab-separated cells and flushes it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes one line of cells; an empty cell shows as "-", so that every
// column has a value.
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		} else {
			cells[i] = strings.Join(strings.Fields(c), " ") // no tab or newline breaks the columns
		}
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// tableTime shows a time in RFC 3339, UTC, to the second; "" for none.
func tableTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// count shows an integer, "" (shown as "-") for zero when zeroIsNone.
func count(n int, zeroIsNone bool) string {
	if n == 0 && zeroIsNone {
		return ""
	}
	return strconv.Itoa(n)
}

// nextPage tells a person reading a table how to get the next page.
func nextPage(w io.Writer, cursor *string) {
	if cursor != nil && *cursor != "" {
		fmt.Fprintf(w, "\nmore: add --after %s\n", *cursor)
	}
}

// endpointRow is an endpoint as the tables show it.
type endpointRow struct {
	ID            string     `json:"id"`
	Tenant        string     `json:"tenant"`
	URL           string     `json:"url"`
	Name          string     `json:"name"`
	EventTypes    []string   `json:"event_types"`
	State         string     `json:"state"`
	Breaker       string     `json:"breaker"`
	RateLimitPerS int        `json:"rate_limit_per_s"`
	CreatedAt     *time.Time `json:"created_at"`
}

func writeEndpoints(w io.Writer, eps []endpointRow) error {
	tw := newTable(w)
	row(tw, "ID", "STATE", "BREAKER", "URL", "EVENT TYPES", "RATE LIMIT", "NAME", "CREATED")
	for _, ep := range eps {
		types := strings.Join(ep.EventTypes, ",")
		if len(ep.EventTypes) == 0 {
			types = "*"
		}
		rate := ""
		if ep.RateLimitPerS > 0 {
			rate = strconv.Itoa(ep.RateLimitPerS) + "/s"
		}
		row(tw, ep.ID, ep.State, ep.Breaker, ep.URL, types, rate, ep.Name, tableTime(ep.CreatedAt))
	}
	return tw.Flush()
}

// endpointsTable shows GET /v1/endpoints.
func endpointsTable(w io.Writer, data []byte) error {
	var list struct{ Data []endpointRow }
	if err := decodeAnswer(data, &list); err != nil {
		return err
	}
	return writeEndpoints(w, list.Data)
}

// endpointTable shows one endpoint.
func endpointTable(w io.Writer, data []byte) error {
	var ep endpointRow
	if err := decodeAnswer(data, &ep); err != nil {
		return err
	}
	return writeEndpoints(w, []endpointRow{ep})
}

// messageRow is a message as the tables show it.
type messageRow struct {
	ID         string     `json:"id"`
	Tenant     string     `json:"tenant"`
	Type       string     `json:"type"`
	Status     string     `json:"status"`
	CreatedAt  *time.Time `json:"created_at"`
	Deliveries []struct {
		ID             string     `json:"id"`
		EndpointID     string     `json:"endpoint_id"`
		URL            string     `json:"url"`
		Status         string     `json:"status"`
		AttemptCount   int        `json:"attempt_count"`
		NextAttemptAt  *time.Time `json:"next_attempt_at"`
		LastStatusCode int        `json:"last_status_code"`
		LastError      string     `json:"last_error"`
		Attempts       []struct {
			At         *time.Time `json:"at"`
			StatusCode int        `json:"status_code"`
			Error      string     `json:"error"`
			DurationMS int64      `json:"duration_ms"`
		} `json:"attempts"`
	} `json:"deliveries"`
}

// messagesTable shows GET /v1/messages.
func messagesTable(w io.Writer, data []byte) error {
	var list struct {
		Data       []messageRow
		NextCursor *string `json:"next_cursor"`
	}
	if err := decodeAnswer(data, &list); err != nil {
		return err
	}
	tw := newTable(w)
	row(tw, "ID", "TYPE", "STATUS", "CREATED")
	for _, m := range list.Data {
		row(tw, m.ID, m.Type, m.Status, tableTime(m.CreatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	nextPage(w, list.NextCursor)
	return nil
}

// messageTable shows GET /v1/messages/{id}: the message, a table of its
// deliveries and one of their attempts, oldest first. The payload is left
// to --output json.
func messageTable(w io.Writer, data []byte) error {
	var m messageRow
	if err := decodeAnswer(data, &m); err != nil {
		return err
	}
	tw := newTable(w)
	row(tw, "MESSAGE", m.ID)
	row(tw, "TYPE", m.Type)
	row(tw, "TENANT", m.Tenant)
	row(tw, "STATUS", m.Status)
	row(tw, "CREATED", tableTime(m.CreatedAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(m.Deliveries) == 0 {
		_, err := fmt.Fprintln(w, "\nno deliveries (no enabled endpoint was subscribed to its type)")
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	row(tw, "DELIVERY", "ENDPOINT", "URL", "STATUS", "ATTEMPTS", "NEXT ATTEMPT", "LAST RESULT")
	for _, d := range m.Deliveries {
		last := d.LastError
		if code := strconv.Itoa(d.LastStatusCode); d.LastStatusCode != 0 {
			last = code
			if d.LastError != "" && d.LastError != "HTTP "+code {
				last += ": " + d.LastError
			}
		}
		row(tw, d.ID, d.EndpointID, d.URL, d.Status, strconv.Itoa(d.AttemptCount), tableTime(d.NextAttemptAt), last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	row(tw, "DELIVERY", "ATTEMPT", "AT", "STATUS CODE", "DURATION", "ERROR")
	for _, d := range m.Deliveries {
		for i, a := range d.Attempts {
			errText := a.Error
			if errText == "HTTP "+strconv.Itoa(a.StatusCode) {
				errText = "" // the status code says it
			}
			row(tw, d.ID, strconv.Itoa(i+1), tableTime(a.At), count(a.StatusCode, true),
				(time.Duration(a.DurationMS) * time.Millisecond).String(), errText)
		}
	}
	return tw.Flush()
}

// tenantsTable shows GET /v1/tenants.
func tenantsTable(w io.Writer, data []byte) error {
	var list struct {
		Data []struct {
			ID                string `json:"id"`
			Endpoints         int    `json:"endpoints"`
			PendingDeliveries int    `json:"pending_deliveries"`
			Messages          int    `json:"messages"`
			Tokens            int    `json:"tokens"`
		}
		NextCursor *string `json:"next_cursor"`
	}
	if err := decodeAnswer(data, &list); err != nil {
		return err
	}
	tw := newTable(w)
	row(tw, "TENANT", "ENDPOINTS", "PENDING DELIVERIES", "MESSAGES", "TOKENS")
	for _, t := range list.Data {
		row(tw, t.ID, count(t.Endpoints, false), count(t.PendingDeliveries, false), count(t.Messages, false), count(t.Tokens, false))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	nextPage(w, list.NextCursor)
	return nil
}

// clusterTable shows GET /v1/cluster.
func clusterTable(w io.Writer, data []byte) error {
	var st struct {
		Leader       string `json:"leader"`
		Term         uint64 `json:"term"`
		CommitIndex  uint64 `json:"commit_index"`
		AppliedIndex uint64 `json:"applied_index"`
		Nodes        []struct {
			ID        string `json:"id"`
			RaftAddr  string `json:"raft_addr"`
			APIAddr   string `json:"api_addr"`
			State     string `json:"state"`
			Reachable bool   `json:"reachable"`
		} `json:"nodes"`
	}
	if err := decodeAnswer(data, &st); err != nil {
		return err
	}
	tw := newTable(w)
	leader := st.Leader
	if leader == "" {
		leader = "none (an election is under way, or no majority is reachable)"
	}
	row(tw, "LEADER", leader)
	row(tw, "TERM", strconv.FormatUint(st.Term, 10))
	row(tw, "COMMIT INDEX", strconv.FormatUint(st.CommitIndex, 10))
	row(tw, "APPLIED INDEX", strconv.FormatUint(st.AppliedIndex, 10))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	row(tw, "NODE", "STATE", "REACHABLE", "RAFT ADDR", "API ADDR")
	for _, n := range st.Nodes {
		reachable := "no"
		if n.Reachable {
			reachable = "yes"
		}
		row(tw, n.ID, n.State, reachable, n.RaftAddr, n.APIAddr)
	}
	return tw.Flush()
}
