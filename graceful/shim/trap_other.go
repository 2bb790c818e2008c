//go:build !linux

package shim

import "syscall"

// TakeoverEnv: see trap_linux.go; there is no takeover off Linux.
const TakeoverEnv = "ENTRYPOINT_INTERNAL_TAKEOVER"

func trap(sock int) { syscall.Close(sock) }

func atoi(string) int { return -1 }
