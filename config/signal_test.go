package config

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
	}{
		{"SIGTERM", syscall.SIGTERM}, {"TERM", syscall.SIGTERM}, {"term", syscall.SIGTERM},
		{"15", syscall.SIGTERM}, {" SIGHUP ", syscall.SIGHUP}, {"sigusr1", syscall.SIGUSR1},
		{"IOT", syscall.SIGABRT}, {"SIGCLD", syscall.SIGCHLD}, {"POLL", syscall.SIGIO},
		{"SIGRTMIN", 34}, {"RTMIN+3", 37}, {"SIGRTMAX", 64}, {"SIGRTMAX-2", 62}, {"64", 64}, {"34", 34},
	} {
		got, err := ParseSignal(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "TERMX", "0", "32", "33", "65", "-1", "SIGRTMIN-1", "RTMAX+1", "RTMIN+31", "RTMIN+", "RTMIN++1", "SIG"} {
		_, err := ParseSignal(in)
		if err == nil {
			t.Errorf("ParseSignal(%q) accepted", in)
			continue
		}
		if !strings.Contains(err.Error(), `write it like "SIGTERM" or "15"`) {
			t.Errorf("ParseSignal(%q) error %q shows no example", in, err)
		}
	}
}

func TestSignalNamesRoundTrip(t *testing.T) {
	sigs := Signals()
	if len(sigs) != 62 || sigs[0] != 1 || sigs[30] != 31 || sigs[31] != 34 || sigs[61] != 64 {
		t.Fatalf("Signals() = %v; want 1..31, 34..64", sigs)
	}
	for _, s := range sigs {
		name := SignalName(s)
		back, err := ParseSignal(name)
		if err != nil || back != s {
			t.Errorf("SignalName(%d) = %q, which parses back as %v, %v", s, name, back, err)
		}
	}
	for sig, want := range map[syscall.Signal]string{15: "SIGTERM", 35: "SIGRTMIN+1", 49: "SIGRTMIN+15", 50: "SIGRTMAX-14", 63: "SIGRTMAX-1", 99: "SIG99"} {
		if got := SignalName(sig); got != want {
			t.Errorf("SignalName(%d) = %q; want %q", sig, got, want)
		}
	}
}

func TestSignalJSON(t *testing.T) {
	var v struct {
		S Signal            `json:"s"`
		M map[Signal]Signal `json:"m"`
	}
	if err := json.Unmarshal([]byte(`{"s": 15, "m": {"TERM": "quit", "2": 3}}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.S.Sys() != syscall.SIGTERM || v.M[Signal(syscall.SIGTERM)] != Signal(syscall.SIGQUIT) || v.M[2] != 3 {
		t.Fatalf("decoded %+v", v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"s":"SIGTERM","m":{"SIGINT":"SIGQUIT","SIGTERM":"SIGQUIT"}}`; string(b) != want {
		t.Fatalf("marshal = %s; want %s", b, want)
	}
	err = json.Unmarshal([]byte(`{"s": "TERMX"}`), &v)
	if err == nil || !strings.Contains(err.Error(), `"TERMX" is not a signal; write it like "SIGTERM" or "15"`) {
		t.Fatalf("bad signal error = %v", err)
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{`"30s"`, 30 * time.Second}, {`"1m30s"`, 90 * time.Second}, {`30`, 30 * time.Second},
		{`1.5`, 1500 * time.Millisecond}, {`"250ms"`, 250 * time.Millisecond}, {`"0"`, 0},
	} {
		var d Duration
		if err := json.Unmarshal([]byte(tc.in), &d); err != nil || d.D() != tc.want {
			t.Errorf("unmarshal %s = %v, %v; want %v", tc.in, d.D(), err, tc.want)
		}
	}
	var d Duration
	err := json.Unmarshal([]byte(`"30"`), &d)
	if err == nil || err.Error() != `"30" is not a duration; write it like "30s" or "1m30s"` {
		t.Errorf(`"30" error = %v`, err)
	}
	if err := d.Decode("1e400s"); err == nil {
		t.Error("Decode accepted an overflow")
	}
	if err := json.Unmarshal([]byte(`1e300`), &d); err == nil {
		t.Error("UnmarshalJSON accepted an overflow")
	}
	b, _ := json.Marshal(Duration(90 * time.Second))
	if string(b) != `"1m30s"` {
		t.Errorf("marshal = %s", b)
	}
}
