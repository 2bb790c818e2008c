package control

// This file holds the protocol both ends speak; listen.go binds the
// socket, server.go answers on it and client.go is the CLI's end.

import (
	"time"

	"github.com/entrypoint/entrypoint/status"
)

const (
	// ioTimeout bounds reading a request and writing a response; the
	// action itself may take as long as the supervisor needs.
	ioTimeout = 10 * time.Second
	// maxRequest caps a request; a real one is well under 100 bytes.
	maxRequest = 64 << 10
)

// Response is the init's answer to one request.
type Response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Results are the reload or restart outcomes, one per app.
	Results []status.Result `json:"results,omitempty"`
	// Status is set for the "status" action.
	Status *status.Status `json:"status,omitempty"`
	// Started, in a message before the final Response, names an app whose
	// reload or restart starts now: it will run to its end even if the
	// caller leaves.
	Started string `json:"started,omitempty"`
}

// request is one call: action is "reload", "restart", "shutdown" or
// "status"; app "" means every app.
type request struct {
	Action string `json:"action"`
	App    string `json:"app,omitempty"`
}
