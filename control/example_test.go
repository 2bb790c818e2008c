package control_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/entrypoint/entrypoint/control"
)

// `entrypoint reload web`: wait for the swap and say how it went.
func ExampleCall() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	resp, err := control.Call(ctx, "@entrypoint-control-{ns}", "reload", "web")
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // no answer: not running, or not allowed
		os.Exit(1)
	}
	for _, r := range resp.Results {
		fmt.Printf("%s %s: ok=%v generation %d -> %d %s\n", r.App, r.Action, r.OK, r.From, r.To, r.Reason)
	}
	if !resp.OK {
		fmt.Fprintln(os.Stderr, resp.Error)
		os.Exit(1)
	}
}
