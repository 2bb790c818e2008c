// Command selfbind is the kind of server most images hold: a plain Go
// net/http server that binds its own port and knows nothing of
// entrypoint: it ignores LISTEN_FDS, sends no READY=1, and on SIGTERM
// stops accepting and finishes what it has (http.Server.Shutdown). The
// tests, the image and the benchmark run it under entrypoint's bind
// takeover.
//
//	selfbind -addr :8080 [-lame-duck 1s]
//
// A plain Shutdown is not quite graceful when the listening socket is
// shared with the next generation: net/http drops, unanswered, a request
// it reads after Shutdown began (conn.serve returns when the server is
// shutting down), and a connection accepted a moment before the stop
// signal is such a request; its client sees EOF. -lame-duck closes the
// listener first and keeps answering what was already accepted (with
// Connection: close) for that long before Shutdown.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", ":8080", "address to bind")
	startDelay := flag.Duration("start-delay", 0, "wait this long before binding (a slow start-up)")
	exitEarly := flag.Bool("exit-before-listen", false, "exit 3 instead of binding (a broken release)")
	lameDuck := flag.Duration("lame-duck", 0, "on SIGTERM, stop accepting and answer what was accepted for this long before Shutdown")
	flag.Parse()
	if *exitEarly {
		fmt.Fprintln(os.Stderr, "selfbind: broken on purpose")
		os.Exit(3)
	}
	time.Sleep(*startDelay)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("selfbind: %v", err)
	}
	gen := os.Getenv("ENTRYPOINT_GENERATION")
	pid := strconv.Itoa(os.Getpid())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "selfbind generation=%s pid=%s\n", gen, pid)
	})}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	var stopping atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-stop
		stopping.Store(true)
		if *lameDuck > 0 {
			// Keep-alives off: every answer says Connection: close, and
			// idle kept-alive connections are closed now.
			srv.SetKeepAlivesEnabled(false)
			ln.Close()
			time.Sleep(*lameDuck)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	log.Printf("selfbind: serving on %s", ln.Addr())
	if err := srv.Serve(ln); !stopping.Load() && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("selfbind: %v", err)
	}
	// Serve returns as soon as the listener is closed; Shutdown is still
	// finishing the open connections.
	<-done
}
