//go:build unix

package cluster

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// quietInterval paces BenchmarkQuietFloor: 50 operations a second, the
// rate of `herald bench --rate 50`.
const quietInterval = 20 * time.Millisecond

// BenchmarkQuietFloor measures, at 50 operations a second, the CPU of the
// parts every message of a quiet node goes through and Herald cannot drop:
// the Go runtime waking from idle, one HTTP exchange on loopback (net/http
// both sides, 1 KiB body: a message's enqueue and its delivery are one
// exchange's two halves each), one append to the Raft log (raft-boltdb,
// fsync on, Herald's options) and one commit to a bbolt file without
// fsync (the state file). Each includes the wake-up. cpu-µs/op counts the
// process's CPU, the kernel's included.
func BenchmarkQuietFloor(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	b.Run("wake-up", func(b *testing.B) {
		paced(b, func(int) {})
	})
	b.Run("http-exchange", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		})}
		go srv.Serve(ln)
		defer srv.Close()
		client := &http.Client{Transport: &http.Transport{}}
		url := "http://" + ln.Addr().String() + "/"
		paced(b, func(int) {
			resp, err := client.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	})
	b.Run("log-append", func(b *testing.B) {
		s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(b.TempDir(), "raft.db"), BoltOptions: logBoltOptions()})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		paced(b, func(i int) {
			l := &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: body}
			if err := s.StoreLogs([]*raft.Log{l}); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("state-commit", func(b *testing.B) {
		db, err := bbolt.Open(filepath.Join(b.TempDir(), "state.db"), 0o600, &bbolt.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		paced(b, func(i int) {
			err := db.Update(func(tx *bbolt.Tx) error {
				bk, err := tx.CreateBucketIfNotExists([]byte("messages"))
				if err != nil {
					return err
				}
				return bk.Put(strconv.AppendInt(nil, int64(1e9+i), 10), body)
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	})
}

// paced runs op once untimed, then b.N times, one every quietInterval, and
// reports the process's CPU per run.
func paced(b *testing.B, op func(i int)) {
	op(0)
	tick := time.NewTicker(quietInterval)
	defer tick.Stop()
	b.ResetTimer()
	c0 := processCPU()
	for i := 1; i <= b.N; i++ {
		<-tick.C
		op(i)
	}
	b.ReportMetric(float64((processCPU()-c0).Microseconds())/float64(b.N), "cpu-µs/op")
}
