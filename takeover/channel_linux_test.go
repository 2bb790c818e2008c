package takeover

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A shim that holds its end without answering (stopped, say) must not
// hold the init's start-up: Receive gives up at its deadline.
func TestReceiveGivesUpAtItsDeadline(t *testing.T) {
	ch, err := NewChannel()
	if err != nil {
		t.Fatal(err)
	}
	held, err := unix.Dup(int(ch.Child().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(held)
	if _, err := ch.Receive(20 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Receive = %v, want a deadline error", err)
	}
}

// A shim that ends without a word is told apart from a refusal.
func TestReceiveWithoutAnswer(t *testing.T) {
	ch, err := NewChannel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Receive(0); !errors.Is(err, errNoAnswer) {
		t.Fatalf("Receive = %v, want errNoAnswer", err)
	}
}
