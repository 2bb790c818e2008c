package config

import (
	"regexp"
	"testing"
)

// validAppName is the hand-written form of ^[a-z0-9][a-z0-9-]*$.
func TestValidAppNameMatchesItsRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	for _, s := range []string{"", "a", "web", "web-2", "-web", "Web", "w_b", "w.b", "9", "a-", "é", "a b", "web\n"} {
		if got, want := validAppName(s), re.MatchString(s); got != want {
			t.Errorf("validAppName(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzValidAppName(f *testing.F) {
	re := regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	f.Add("web-2")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validAppName(s), re.MatchString(s); got != want {
			t.Errorf("validAppName(%q) = %v, want %v", s, got, want)
		}
	})
}
