//go:build !race

package swap

var raceFlags []string
