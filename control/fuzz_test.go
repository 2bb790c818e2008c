package control

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzServeRequest sends arbitrary bytes as a request to a real control
// socket. The server must answer every one with a well-formed Response
// (never panic, hang or hang up silently), a refusal must say why, and
// the controller must be asked to act only for a well-formed request.
func FuzzServeRequest(f *testing.F) {
	for _, s := range []string{
		`{"action":"status"}`,
		`{"action":"reload","app":"web"}`,
		`{"action":"restart"}`,
		`{"action":"shutdown","app":"api"}`,
		`{"action":"reload","app":"nope"}`,
		`{"action":"dance"}`,
		`{"action":"status"}{"action":"shutdown"}`,
		`{"action":["status"]}`,
		`{"ACTION":"status","App":"web"}`,
		`{"action":"status","app":"web","extra":1}`,
		`{"action":"\u0000"}`,
		`null`,
		`[]`,
		`{`,
		``,
		strings.Repeat(" ", maxRequest) + `{"action":"status"}`,
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "control.sock")
	l, err := Listen(path)
	if err != nil {
		f.Fatal(err)
	}
	fake := newFake()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, fake, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}) }()
	f.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.Errorf("Serve: %v", err)
		}
	})

	f.Fuzz(func(t *testing.T, data []byte) {
		calls, begun, shutdowns := len(fake.Calls()), len(fake.Started()), len(fake.Shutdowns())

		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The server reads at most one JSON value and may answer before
		// reading everything; a refused write is not the server's fault.
		_ = c.SetDeadline(time.Now().Add(2 * ioTimeout))
		_, _ = c.Write(data)
		_ = c.(*net.UnixConn).CloseWrite()
		// Read as Call does: JSON values up to the final answer. (A server that hangs up on
		// unread input makes the kernel report ECONNRESET after the
		// answer, so reading to EOF is not what clients do.)
		// Progress messages ({"started": APP}) may come first.
		var resp Response
		dec := json.NewDecoder(c)
		started := false
		for {
			resp = Response{}
			if err := dec.Decode(&resp); err != nil {
				t.Fatalf("no well-formed answer: %v", err)
			}
			if resp.Started == "" {
				break
			}
			started = true
		}
		// The server hangs up only after what it runs once answered (a
		// shutdown): wait for that, so it is not counted for the next input.
		_, _ = io.Copy(io.Discard, c)
		raw, _ := json.Marshal(resp)
		if !resp.OK && resp.Error == "" {
			t.Fatalf("refusal without a reason: %s", raw)
		}

		var req request
		wellFormed := json.NewDecoder(strings.NewReader(string(data))).Decode(&req) == nil
		asked := len(fake.Calls()) > calls || len(fake.Shutdowns()) > shutdowns
		if asked && !wellFormed {
			t.Fatalf("the controller was asked to act on a malformed request %q", data)
		}
		// Acted: an action passed its start check (the half-close may be
		// seen before it, and then nothing starts), or a shutdown.
		acted := len(fake.Started()) > begun || len(fake.Shutdowns()) > shutdowns
		// The half-close above is how a caller says it gives up: an
		// action that had started then ends in "the caller left", which
		// the started message already told.
		gaveUp := started && strings.Contains(resp.Error, "caller left")
		if acted && !resp.OK && resp.Results == nil && !gaveUp {
			t.Fatalf("the controller acted but the answer says nothing about it: %s", raw)
		}
	})
}
