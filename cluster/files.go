package cluster

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// Snapshots hold everything the state file holds, secrets included, but
// hashicorp/raft creates their directories 0755 and files 0644. privately
// wraps its snapshot store so that each snapshot is made private (0700
// directories, 0600 files) as it is completed; the data dir itself is 0700
// too, so nothing is readable by others in the meantime.
type privateSnapshots struct {
	raft.SnapshotStore
	dir string // the snapshots directory
}

func (p privateSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := p.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return privateSink{SnapshotSink: sink, dir: p.dir}, nil
}

type privateSink struct {
	raft.SnapshotSink
	dir string
}

func (s privateSink) Close() error {
	if err := s.SnapshotSink.Close(); err != nil {
		return err
	}
	return makePrivate(filepath.Join(s.dir, s.ID()))
}

// makePrivate makes root and everything under it accessible to its owner
// only.
func makePrivate(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o600)
		if d.IsDir() {
			mode = 0o700
		}
		return os.Chmod(path, mode)
	})
}
