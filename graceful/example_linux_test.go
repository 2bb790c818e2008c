package graceful_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/graceful"
	"github.com/entrypoint/entrypoint/reaper"
)

// One generation as the supervisor starts it: sockets bound once, a fresh
// notify socket per generation, the spawn inside the reaper's Start, and
// the gate raced against the generation's exit.
func ExampleSpawn() {
	r := reaper.New(reaper.Options{})
	go r.Run(context.Background())

	sockets, err := graceful.Bind([]config.Listener{{Name: "http", Address: ":8080"}})
	if err != nil {
		fmt.Println(err) // bind :8080: address already in use
		return
	}
	defer sockets.Close() // only when the init exits

	n, err := graceful.NewNotify()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer n.Close() // when this generation is gone

	path, err := exec.LookPath("my-server") // at every start
	if err != nil {
		fmt.Println(err)
		return
	}
	pid, exited, err := r.Start(func() (int, error) {
		return graceful.Spawn(graceful.Spec{
			Path: path, Argv: []string{"my-server", "--flag"},
			Sockets: sockets, Generation: 1, Notify: n,
			Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		})
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	n.Attach(pid)

	gate, err := graceful.NewGate(config.Readiness{Type: "notify"})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan error, 1)
	go func() { ready <- gate.Wait(ctx, graceful.Target{Pid: pid, Notify: n, Reaper: r}) }()
	select {
	case err := <-ready:
		if err != nil {
			fmt.Println(err) // readiness gate notify: no READY=1 within 60s; ... another --readiness ...
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-exited
			return
		}
		fmt.Println("generation 1 is serving")
	case e := <-exited:
		fmt.Println("generation 1 ended before it was ready:", e)
		return
	}
	// Later messages: WATCHDOG=1, STATUS=...
	for m := range n.Messages() {
		fmt.Println(m.Status)
	}
}
