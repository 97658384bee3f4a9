package main

import (
	"net"
	"net/http"

	"github.com/heraldhq/herald/engine"
)

// addNodeRequest is the body of POST /v1/cluster/nodes.
type addNodeRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
}

// addNode adds a voter (a node started with --peers that do not include
// it) and answers with the cluster status.
func (a *api) addNode(w http.ResponseWriter, r *http.Request) error {
	var req addNodeRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil {
		return &engine.InvalidError{Field: "raft_addr", Msg: "must be host:port"}
	}
	if err := a.e.AddNode(r.Context(), req.ID, req.RaftAddr); err != nil {
		return err
	}
	return a.clusterStatus(w, r)
}

// removeNode removes a node from the cluster.
func (a *api) removeNode(w http.ResponseWriter, r *http.Request) error {
	if err := a.e.RemoveNode(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
