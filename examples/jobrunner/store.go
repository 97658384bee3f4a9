package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// jobStore keeps the jobs in one JSON file, rewritten whole on every change:
// written to a temporary file, synced, then renamed over the old one, so a
// crash leaves the old version or the new, never half of one. That is
// plenty for an example's few jobs; a real service keeps its jobs in its
// database.
type jobStore struct {
	path string
	mu   sync.Mutex // guards jobs and the file
	jobs map[string]*job
}

// openJobStore reads the jobs file, if there is one.
func openJobStore(path string) (*jobStore, error) {
	s := &jobStore{path: path, jobs: map[string]*job{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &s.jobs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// add keeps a new job.
func (s *jobStore) add(j *job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *j
	s.jobs[j.ID] = &c
	if err := s.save(); err != nil {
		delete(s.jobs, j.ID)
		return err
	}
	return nil
}

// get returns a copy of the job.
func (s *jobStore) get(id string) (job, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return job{}, false
	}
	return *j, true
}

// all returns a copy of every job.
func (s *jobStore) all() []job {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]job, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, *j)
	}
	return out
}

// update changes a job with f, stamps it and saves it; it returns the job
// as it is now.
func (s *jobStore) update(id string, f func(*job)) (job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return job{}, fmt.Errorf("job %s not found", id)
	}
	f(j)
	j.UpdateTime = time.Now().UTC()
	return *j, s.save()
}

// save writes the jobs to the file; s.mu must be held.
func (s *jobStore) save() error {
	data, err := json.MarshalIndent(s.jobs, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.path)
}
