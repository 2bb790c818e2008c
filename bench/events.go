package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// appEvent is one line of the example app's -events file.
type appEvent struct {
	Event string `json:"event"`
	Pid   int    `json:"pid"`
	Gen   string `json:"gen"`
	T     int64  `json:"t"` // unix nanoseconds
}

// eventLog follows an -events file that every generation appends to.
type eventLog struct {
	path    string
	off     int64
	partial []byte
	seen    []appEvent
}

// poll reads the complete lines appended since the last call.
func (e *eventLog) poll() error {
	f, err := os.Open(e.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open events: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := f.ReadAt(buf, e.off)
		e.off += int64(n)
		e.partial = append(e.partial, buf[:n]...)
		if n < len(buf) || err != nil {
			break
		}
	}
	for {
		i := bytes.IndexByte(e.partial, '\n')
		if i < 0 {
			break
		}
		var ev appEvent
		if err := json.Unmarshal(e.partial[:i], &ev); err == nil {
			e.seen = append(e.seen, ev)
		}
		e.partial = e.partial[i+1:]
	}
	return nil
}

// wait returns the first event at index from or later that matches, polling
// the file every millisecond until timeout.
func (e *eventLog) wait(from int, timeout time.Duration, match func(appEvent) bool) (appEvent, error) {
	deadline := time.Now().Add(timeout)
	for {
		for _, ev := range e.seen[min(from, len(e.seen)):] {
			if match(ev) {
				return ev, nil
			}
		}
		from = len(e.seen)
		if time.Now().After(deadline) {
			return appEvent{}, fmt.Errorf("no matching event in %s", timeout)
		}
		time.Sleep(time.Millisecond)
		if err := e.poll(); err != nil {
			return appEvent{}, err
		}
	}
}

// find returns the first event of pid with the given name seen so far.
func (e *eventLog) find(pid int, name string) (appEvent, bool) {
	for _, ev := range e.seen {
		if ev.Pid == pid && ev.Event == name {
			return ev, true
		}
	}
	return appEvent{}, false
}
