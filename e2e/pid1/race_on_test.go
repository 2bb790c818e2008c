//go:build race

package pid1

// raceFlags builds the binaries under test with the race detector when the
// tests themselves run with -race, so the supervisor's goroutines are
// checked too (a race report makes the binary exit 66 and the test fail).
var raceFlags = []string{"-race"}
