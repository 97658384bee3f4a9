package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// raftLogger returns the hclog logger given to hashicorp/raft, its
// transport and its snapshot store. It writes through log with readable
// attributes (peer=n3 addr=127.0.0.1:9083, backoff=150ms, errors as text)
// and adapts raft's levels:
//
//   - Raft retries an unreachable peer every few hundred milliseconds and
//     logs an error for every attempt (heartbeat, appendEntries,
//     requestVote). Those are folded into one state per peer: one warning
//     when the peer becomes unreachable, a reminder every minute while it
//     stays so, and an info record when raft hears from it again, with how
//     long it was down. Each folded error is still logged, at debug level.
//   - Raft reports its own elections as warnings; a node starting up or a
//     follower taking over after a leader's death is routine, so those
//     (and the others' "we have a leader" answers) become info.
//   - Raft's info records (state changes, replication starts, snapshots)
//     go to debug; its other warnings and errors keep their level.
func raftLogger(log *slog.Logger) hclog.Logger {
	return &raftLog{name: "raft", t: &peerTracker{
		log:   log.With("component", "raft"),
		now:   time.Now,
		peers: map[string]*peerDown{},
		ids:   map[raft.ServerID]raft.ServerAddress{},
		addrs: map[raft.ServerAddress]raft.ServerID{},
	}}
}

const (
	// peerReminder is how often a peer that stays unreachable is
	// mentioned again.
	peerReminder = time.Minute
	// peerStale ends an episode nothing was heard of for this long: this
	// node stopped contacting the peer (a candidate that became a
	// follower), so it cannot tell when the peer comes back. While this
	// node does contact it, raft retries at least every ~10s (its longest
	// backoff, or the transport's dial timeout), and the first successful
	// replication after the peer is back comes within that time too.
	peerStale = 30 * time.Second
)

// routineWarnings are raft warnings about normal elections: a follower that
// times out first asks the others, who may not have noticed yet.
var routineWarnings = []string{
	"heartbeat timeout reached, starting election",
	"Election timeout reached, restarting election",
	"rejecting pre-vote request since we have a leader",
	"rejecting vote request since we have a leader",
}

// peerEvent says what a raft message tells about the peer it names.
type peerEvent int

const (
	// failed: an RPC to the peer failed, or it has not answered for a
	// leader lease (raft logs this per retry).
	failed peerEvent = iota + 1
	// failedIfDown: an error about the peer that is folded only while the
	// peer is already unreachable (a snapshot failure is an error of its
	// own otherwise).
	failedIfDown
	// lease: the leader has not heard from the peer for a lease timeout;
	// part of an episode, or a warning of its own.
	lease
	// contacted: the peer answered.
	contacted
	// removed: the peer left the configuration.
	removed
)

// peerMessages are the raft v1.7.3 messages about one peer, as logged in
// replication.go, raft.go and net_transport.go, with what each tells and
// the name of the RPC that failed.
var peerMessages = map[string]struct {
	event peerEvent
	rpc   string
}{
	"failed to heartbeat to":                     {failed, "heartbeat"},
	"failed to appendEntries to":                 {failed, "appendEntries"},
	"failed to pipeline appendEntries":           {failed, "appendEntries"},
	"failed to start pipeline replication to":    {failed, "appendEntries"},
	"failed to make requestVote RPC":             {failed, "requestVote"},
	"failed to send snapshot to":                 {failedIfDown, "installSnapshot"},
	"failed to install snapshot":                 {failedIfDown, "installSnapshot"}, // only with a peer: the follower's own has none
	"failed to contact":                          {lease, ""},
	"pipelining replication":                     {contacted, ""}, // after a successful appendEntries
	"appendEntries rejected, sending older logs": {contacted, ""},
	"installSnapshot rejected to":                {contacted, ""},
	"peer has newer term, stopping replication":  {contacted, ""},
	"vote granted":                               {contacted, ""},
	"pre-vote granted":                           {contacted, ""},
	"entering follower state":                    {contacted, ""}, // with the leader it heard from, if any
	"removed peer, stopping replication":         {removed, ""},
}

// connectionMessages are the transport's errors about one connection,
// which are routine when the peer (or this node) closes it mid-exchange.
var connectionMessages = map[string]bool{
	"failed to flush response":          true,
	"failed to decode incoming command": true,
}

// disconnected reports whether a message's error says the connection was
// closed or reset.
func disconnected(args []any) bool {
	v, _ := lookup(args, "error")
	err, ok := v.(error)
	return ok && (errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET))
}

// peerKeys are the keys under which raft names the peer of a message.
var peerKeys = []string{"peer", "target", "server-id", "from", "leader-id"}

// peerDown is an unreachable peer.
type peerDown struct {
	id       raft.ServerID
	addr     raft.ServerAddress
	since    time.Time // first failure
	last     time.Time // latest failure
	reminded time.Time
	failures int
	err      string // latest error
}

// peerTracker is shared by a raftLog and the loggers derived from it.
type peerTracker struct {
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	peers map[string]*peerDown // by peerKey
	ids   map[raft.ServerID]raft.ServerAddress
	addrs map[raft.ServerAddress]raft.ServerID
}

// raftLog implements hclog.Logger over a peerTracker.
type raftLog struct {
	name    string
	implied []any
	t       *peerTracker
}

func (l *raftLog) Log(level hclog.Level, msg string, args ...any) {
	if len(l.implied) > 0 {
		args = append(l.implied[:len(l.implied):len(l.implied)], args...)
	}
	l.t.handle(l.name, level, msg, args)
}

func (l *raftLog) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *raftLog) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *raftLog) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *raftLog) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *raftLog) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

// Every level is enabled: the peer states are built from raft's info and
// debug messages too; the slog handler filters what it prints.
func (l *raftLog) IsTrace() bool         { return true }
func (l *raftLog) IsDebug() bool         { return true }
func (l *raftLog) IsInfo() bool          { return true }
func (l *raftLog) IsWarn() bool          { return true }
func (l *raftLog) IsError() bool         { return true }
func (l *raftLog) GetLevel() hclog.Level { return hclog.Trace }
func (l *raftLog) SetLevel(hclog.Level)  {}
func (l *raftLog) ImpliedArgs() []any    { return l.implied }
func (l *raftLog) Name() string          { return l.name }
func (l *raftLog) ResetNamed(n string) hclog.Logger {
	c := *l
	c.name = n
	return &c
}

func (l *raftLog) Named(n string) hclog.Logger {
	if l.name != "" {
		n = l.name + "." + n
	}
	return l.ResetNamed(n)
}

func (l *raftLog) With(args ...any) hclog.Logger {
	c := *l
	c.implied = append(l.implied[:len(l.implied):len(l.implied)], args...)
	return &c
}

func (l *raftLog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

func (l *raftLog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	level := hclog.Info
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = opts.ForceLevel
	}
	return stdWriter{l: l, level: level}
}

// stdWriter logs each line written to it.
type stdWriter struct {
	l     *raftLog
	level hclog.Level
}

func (w stdWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		w.l.Log(w.level, string(line))
	}
	return len(p), nil
}

// handle logs one raft message, or folds it into its peer's state.
func (t *peerTracker) handle(name string, level hclog.Level, msg string, args []any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.learn(args)
	now := t.now()
	if pm, ok := peerMessages[msg]; ok {
		if id, addr, ok := t.peerOf(args); ok {
			key := peerKey(id, addr)
			d := t.peers[key]
			if d != nil && now.Sub(d.last) > peerStale {
				// This node stopped trying; what happened since is unknown.
				delete(t.peers, key)
				d = nil
			}
			fold := false
			switch pm.event {
			case failed:
				t.failed(key, id, addr, pm.rpc, errorOf(args), now)
				fold = true
			case failedIfDown, lease:
				if fold = d != nil; fold {
					t.failed(key, id, addr, pm.rpc, errorOf(args), now)
				}
			case contacted:
				if d != nil {
					down := d.last.Sub(d.since)
					t.log.Info("peer reachable again", append(d.attrs(),
						slog.String("down", roundDuration(down).String()),
						slog.Int("failures", d.failures))...)
					delete(t.peers, key)
				}
			case removed:
				delete(t.peers, key)
			}
			if fold {
				level = hclog.Debug
			}
		}
	}
	if connectionMessages[msg] && disconnected(args) {
		level = hclog.Debug // the other side went away mid-exchange: its own records say why
	}
	t.emit(name, level, msg, args)
}

// failed records a failed contact with a peer, logging the first one and
// a reminder every peerReminder.
func (t *peerTracker) failed(key string, id raft.ServerID, addr raft.ServerAddress, rpc, err string, now time.Time) {
	d := t.peers[key]
	if d == nil {
		d = &peerDown{id: id, addr: addr, since: now, reminded: now}
		t.peers[key] = d
		attrs := d.attrs()
		if err != "" {
			attrs = append(attrs, slog.String("error", err))
		}
		if rpc != "" {
			attrs = append(attrs, slog.String("rpc", rpc))
		}
		t.log.Warn("peer unreachable", attrs...)
	}
	d.last = now
	d.failures++
	if err != "" {
		d.err = err
	}
	if now.Sub(d.reminded) >= peerReminder {
		d.reminded = now
		attrs := append(d.attrs(),
			slog.String("down", roundDuration(now.Sub(d.since)).String()),
			slog.Time("since", d.since),
			slog.Int("failures", d.failures))
		if d.err != "" {
			attrs = append(attrs, slog.String("error", d.err))
		}
		t.log.Warn("peer still unreachable", attrs...)
	}
}

func (d *peerDown) attrs() []any {
	var attrs []any
	if d.id != "" {
		attrs = append(attrs, slog.String("peer", string(d.id)))
	}
	if d.addr != "" {
		attrs = append(attrs, slog.String("addr", string(d.addr)))
	}
	return attrs
}

func peerKey(id raft.ServerID, addr raft.ServerAddress) string {
	if addr != "" {
		return "addr:" + string(addr)
	}
	return "id:" + string(id)
}

// learn records the ids and addresses of the servers a message names: the
// configurations raft logs at start and on every change, and the peers of
// replication messages.
func (t *peerTracker) learn(args []any) {
	for i := 1; i < len(args); i += 2 {
		switch v := args[i].(type) {
		case raft.Server:
			t.learnServer(v)
		case hclog.Format:
			for _, a := range v {
				if servers, ok := a.([]raft.Server); ok {
					for _, s := range servers {
						t.learnServer(s)
					}
				}
			}
		}
	}
}

func (t *peerTracker) learnServer(s raft.Server) {
	if s.ID == "" || s.Address == "" {
		return
	}
	if old, ok := t.ids[s.ID]; ok && old != s.Address {
		delete(t.addrs, old)
	}
	t.ids[s.ID] = s.Address
	t.addrs[s.Address] = s.ID
}

// peerOf returns the peer a message names.
func (t *peerTracker) peerOf(args []any) (raft.ServerID, raft.ServerAddress, bool) {
	for _, key := range peerKeys {
		if v, ok := lookup(args, key); ok {
			id, addr := t.resolve(v)
			return id, addr, id != "" || addr != ""
		}
	}
	return "", "", false
}

// resolve returns the id and address of a peer value.
func (t *peerTracker) resolve(v any) (raft.ServerID, raft.ServerAddress) {
	switch v := v.(type) {
	case raft.Server:
		return v.ID, v.Address
	case *raft.Server:
		if v != nil {
			return v.ID, v.Address
		}
	case raft.ServerAddress:
		return t.addrs[v], v
	case raft.ServerID:
		return v, t.ids[v]
	case string:
		return raft.ServerID(v), t.ids[raft.ServerID(v)]
	}
	return "", ""
}

func lookup(args []any, key string) (any, bool) {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == key {
			return args[i+1], true
		}
	}
	return nil, false
}

func errorOf(args []any) string {
	if v, ok := lookup(args, "error"); ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

// emit logs a raft message with readable attributes.
func (t *peerTracker) emit(name string, level hclog.Level, msg string, args []any) {
	lvl := slogLevel(level, msg)
	ctx := context.Background()
	if !t.log.Enabled(ctx, lvl) {
		return
	}
	var attrs []slog.Attr
	if name != "raft" && name != "" {
		attrs = append(attrs, slog.String("logger", name))
	}
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) { // as hclog does with an odd argument
			attrs = append(attrs, slog.Any("extra_value_at_end", value(args[i])))
			break
		}
		key := fmt.Sprint(args[i])
		v := args[i+1]
		if key == "peer" || key == "target" || key == "server-id" {
			if id, addr := t.resolve(v); id != "" || addr != "" {
				if id != "" {
					attrs = append(attrs, slog.String("peer", string(id)))
				}
				if addr != "" {
					attrs = append(attrs, slog.String("addr", string(addr)))
				}
				continue
			}
		}
		attrs = append(attrs, slog.Attr{Key: attrKey(key), Value: value(v)})
	}
	t.log.LogAttrs(ctx, lvl, msg, attrs...)
}

func slogLevel(level hclog.Level, msg string) slog.Level {
	switch {
	case level >= hclog.Error:
		return slog.LevelError
	case level == hclog.Warn:
		for _, routine := range routineWarnings {
			if strings.HasPrefix(msg, routine) {
				return slog.LevelInfo
			}
		}
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

var keyReplacer = strings.NewReplacer(" ", "_", "-", "_")

// attrKey renames raft's keys: no spaces or dashes, and none of slog's own.
func attrKey(k string) string {
	switch k {
	case "backoff time":
		return "backoff"
	case "time": // "failed to contact": since the last contact
		return "silent_for"
	case slog.LevelKey, slog.MessageKey, slog.SourceKey:
		return "raft_" + k
	}
	return keyReplacer.Replace(k)
}

// value makes raft's values readable: durations, errors, formats and
// servers as text.
func value(v any) slog.Value {
	switch v := v.(type) {
	case time.Duration:
		return slog.StringValue(roundDuration(v).String())
	case hclog.Format:
		if len(v) > 0 {
			if f, ok := v[0].(string); ok {
				return slog.StringValue(fmt.Sprintf(f, v[1:]...))
			}
		}
		return slog.StringValue(fmt.Sprint(v...))
	case raft.Server:
		return slog.StringValue(fmt.Sprintf("%s@%s", v.ID, v.Address))
	case raft.ServerID:
		return slog.StringValue(string(v))
	case raft.ServerAddress:
		return slog.StringValue(string(v))
	case string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, time.Time:
		return slog.AnyValue(v)
	case error, fmt.Stringer:
		return slog.StringValue(fmt.Sprint(v))
	}
	return slog.AnyValue(v)
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d
}
