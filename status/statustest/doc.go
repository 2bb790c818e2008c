// Package statustest provides Fake, a status.Controller whose state a test
// sets directly, shared by the tests of every package that reads or drives
// the supervisor (health, control).
//
// It is for tests only: production code must never import it. Like status
// it imports only the standard library, and it never starts a process or
// touches the system.
package statustest
