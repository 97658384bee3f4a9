package main

import (
	"net/http"
	"strconv"
	"time"
)

// backupStall is how long a backup download may go without the client
// reading: a reader that stalls is cut off, so it cannot hold the store's
// snapshot (and the pages it pins) open for ever.
const backupStall = 30 * time.Second

// backup streams a consistent snapshot of the whole state, with its length
// declared so that a client can tell a complete file from a cut one. It
// takes as long as the transfer needs: the write deadline moves forward
// with every write.
func (a *api) backup(w http.ResponseWriter, r *http.Request) error {
	b, err := a.e.Backup(r.Context())
	if err != nil {
		return err
	}
	defer b.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(b.Size(), 10))
	h.Set("Content-Disposition", `attachment; filename="herald-backup-`+time.Now().UTC().Format("20060102T150405Z")+`.db"`)
	h.Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	if _, err := b.WriteTo(writerFunc(func(p []byte) (int, error) {
		rc.SetWriteDeadline(time.Now().Add(backupStall))
		return w.Write(p)
	})); err != nil {
		// The status is sent: abort the connection, so that the client
		// sees a transfer shorter than declared rather than a whole file.
		a.log.Warn("backup cut off", "error", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// writerFunc is an io.Writer from a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
