//go:build !nosignals

package main

import "github.com/entrypoint/entrypoint/earlysig"

// beforeChild waits, as entrypoint's reaper does before every start, until
// earlysig has caught every signal.
func beforeChild() { earlysig.Wait() }
