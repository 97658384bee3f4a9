package main

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/heraldhq/herald/engine"
)

// addNodeRequest is the body of POST /v1/cluster/nodes.
type addNodeRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
}

// addNode adds a voter (a node started with --peers that do not include
// it) and answers with the cluster status. The engine checks the request:
// a malformed id or address is a 400, an id that is a member at another
// address or an address another member has a 409.
func (a *api) addNode(w http.ResponseWriter, r *http.Request) error {
	var req addNodeRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	if err := a.e.AddNode(r.Context(), req.ID, req.RaftAddr); err != nil {
		return err
	}
	return a.clusterStatus(w, r)
}

// removeNode removes a node from the cluster: 404 for a node that is not a
// member, 409 for the only voter.
func (a *api) removeNode(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := a.e.RemoveNode(r.Context(), id); err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return &apiError{status: http.StatusNotFound, code: codeNotFound,
				msg: fmt.Sprintf("node %q is not a member of the cluster (GET /v1/cluster lists them)", id)}
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
