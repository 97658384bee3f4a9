package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// raftLogger returns an hclog logger for hashicorp/raft that writes through
// log with structured attributes. Raft reports its own elections as
// warnings; a node starting up or a follower taking over after a leader's
// death is routine, so those become info.
func raftLogger(log *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "raft",
		Level:      hclog.Warn,
		JSONFormat: true,
		Output:     &raftLogWriter{log: log},
	})
}

// routineWarnings are raft warnings about normal elections.
var routineWarnings = []string{
	"heartbeat timeout reached, starting election",
	"Election timeout reached, restarting election",
}

// raftLogWriter turns hclog's JSON lines into slog records.
type raftLogWriter struct{ log *slog.Logger }

func (w *raftLogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(line, &rec) != nil {
			w.log.Warn(string(line), "component", "raft")
			continue
		}
		msg, _ := rec["@message"].(string)
		level := slog.LevelWarn
		switch rec["@level"] {
		case "error":
			level = slog.LevelError
		case "info", "debug", "trace":
			level = slog.LevelInfo
		}
		for _, routine := range routineWarnings {
			if strings.HasPrefix(msg, routine) {
				level = slog.LevelInfo
			}
		}
		attrs := []slog.Attr{slog.String("component", "raft")}
		for k, v := range rec {
			if !strings.HasPrefix(k, "@") {
				attrs = append(attrs, slog.Any(k, v))
			}
		}
		w.log.LogAttrs(context.Background(), level, msg, attrs...)
	}
	return len(p), nil
}
