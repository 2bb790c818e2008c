package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// parseDuration reads "30s", "1m30s", "250ms". A bare number is refused so
// that "30" is never silently read as 30 nanoseconds.
func parseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write it like \"30s\" or \"1m30s\"", s)
	}
	return Duration(d), nil
}

// String writes the time.Duration form, "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "1m30s", or a plain number of seconds (30, 1.5),
// which is how YAML users write an unquoted 30.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] != '"' {
		var secs float64
		if err := json.Unmarshal(b, &secs); err != nil {
			return fmt.Errorf("%s is not a duration; write it like \"30s\" or \"1m30s\"", b)
		}
		v, err := secondsDuration(secs)
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	return d.Decode(s)
}

func secondsDuration(secs float64) (Duration, error) {
	ns := secs * float64(time.Second)
	if math.IsNaN(ns) || math.IsInf(ns, 0) || ns > math.MaxInt64 || ns < math.MinInt64 {
		return 0, fmt.Errorf("%v seconds is out of range; write it like \"30s\" or \"1m30s\"", secs)
	}
	return Duration(time.Duration(ns)), nil
}

// Decode implements envconfig.Decoder: the same strings as UnmarshalJSON.
func (d *Duration) Decode(v string) error {
	p, err := parseDuration(v)
	if err != nil {
		return err
	}
	*d = p
	return nil
}
