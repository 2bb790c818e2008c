//go:build !race

package pid1

var raceFlags []string
