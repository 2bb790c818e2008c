package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/entrypoint/entrypoint/config"
	"github.com/entrypoint/entrypoint/control"
	"github.com/entrypoint/entrypoint/status"
)

// validateMain prints the effective config, or every error at once.
func validateMain(args []string, stdout, stderr io.Writer) int {
	for _, w := range config.UnknownEnv(os.Environ()) {
		fmt.Fprintf(stderr, "entrypoint: warning: %s\n", w)
	}
	cfg, err := config.Load(args, nil)
	if err != nil {
		printErr(stderr, err)
		return exitUsage
	}
	out, err := cfg.YAML()
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint: %v\n", err)
		return 1
	}
	stdout.Write(out)
	return 0
}

// controlMain is `entrypoint reload|restart|shutdown|status`: it talks to
// the running init over the control socket, waits for the outcome and
// exits 0 only on success.
func controlMain(action string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("entrypoint "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("control-socket", "", "control socket of the running entrypoint (default: ENTRYPOINT_CONTROL_SOCKET, else PID 1's --control-socket when PID 1 is entrypoint, else "+config.DefaultControlSocket+")")
	otherPidns := fs.Bool("allow-other-pidns", envBool("ENTRYPOINT_CONTROL_ALLOW_OTHER_PIDNS"), "talk to an entrypoint in another PID namespace (not this container's)")
	asJSON := fs.Bool("json", false, "print JSON (status)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up waiting after this long")
	// Flags may come before or after the app name, as users type them.
	var app string
	for {
		if err := fs.Parse(args); err != nil {
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		if app != "" || action == "shutdown" || action == "status" {
			fmt.Fprintf(stderr, "entrypoint %s: unexpected argument %q\n", action, fs.Arg(0))
			return exitUsage
		}
		app, args = fs.Arg(0), fs.Args()[1:]
	}
	if *socket == "" {
		*socket = defaultControlSocket()
		if *socket == "" || *socket == config.Off {
			fmt.Fprintf(stderr, "entrypoint %s: the entrypoint that is PID 1 runs without a control socket (--control-socket off)\n", action)
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	resp, err := control.Client{Socket: *socket, AllowOtherPidns: *otherPidns}.Call(ctx, action, app)
	var gaveUp *control.AbandonedError
	if errors.As(err, &gaveUp) && errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(stderr, "entrypoint %s: no outcome within --timeout %s: %s\n", action, *timeout, gaveUp.Outcome())
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "entrypoint %s: %v\n", action, err)
		return 1
	}
	failedShown := false
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if action == "status" {
			enc.Encode(resp.Status)
		} else {
			enc.Encode(resp)
		}
	} else if action == "status" && resp.Status != nil {
		printStatus(stdout, *resp.Status)
	} else {
		for _, r := range resp.Results {
			if r.OK {
				fmt.Fprintf(stdout, "%s %s: ok, generation %d -> %d (pid %d) in %s\n", r.App, r.Action, r.From, r.To, r.Pid, r.Duration.Round(time.Millisecond))
			} else {
				// Once, on stderr: resp.Error repeats these reasons.
				fmt.Fprintf(stderr, "entrypoint %s: %s: FAILED: %s\n", action, r.App, r.Reason)
				failedShown = true
			}
		}
		if action == "shutdown" && resp.OK {
			fmt.Fprintln(stdout, "shutdown started")
		}
	}
	if !resp.OK {
		if resp.Error != "" && !failedShown {
			fmt.Fprintf(stderr, "entrypoint %s: %s\n", action, resp.Error)
		}
		return 1
	}
	return 0
}

func printStatus(w io.Writer, st status.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ready, _ := st.Ready()
	live, _ := st.Live()
	fmt.Fprintf(tw, "entrypoint pid %d, up %s, ready=%v live=%v shutting_down=%v\n", st.Pid, time.Since(st.Started).Round(time.Second), ready, live, st.ShuttingDown)
	fmt.Fprintln(tw, "APP\tSTATE\tREADY\tGEN\tPID\tUP\tRESTARTS\tLAST ACTION\tLAST CONFIG CHANGE")
	for _, a := range st.Apps {
		gen, pid, up := "-", "-", "-"
		if c := a.Current; c != nil {
			gen, pid, up = fmt.Sprint(c.N), fmt.Sprint(c.Pid), time.Since(c.Started).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%d\t%s\t%s\n", a.Name, a.State, a.Ready, gen, pid, up, a.Restarts, describe(a.LastAction), describe(a.LastChange))
		for _, o := range a.Others {
			fmt.Fprintf(tw, "  (gen %d)\t%s\t\t%d\t%d\t%s\t\t\t\n", o.N, o.Phase, o.N, o.Pid, time.Since(o.Started).Round(time.Second))
		}
	}
	tw.Flush()
	// Problems that leave the app serving but need a human, under the
	// table so its columns stay put.
	for _, a := range st.Apps {
		if a.Takeover != "" {
			fmt.Fprintf(w, "%s: bind takeover %s\n", a.Name, a.Takeover)
		}
		if v := a.Validating; v != nil {
			fmt.Fprintf(w, "%s: validating a config change for %s (timeout %s): %s; reloads wait for it\n", a.Name, time.Since(v.Started).Round(time.Second), v.Timeout, strings.Join(v.Command, " "))
		}
		if ws := a.Watch; ws != nil && !ws.OK {
			fmt.Fprintf(w, "%s: watch FAILED %s ago, changes of %s are not applied (retrying): %s\n", a.Name, time.Since(ws.Since).Round(time.Second), strings.Join(ws.Paths, ", "), ws.Error)
		}
	}
}

func describe(r *status.Result) string {
	if r == nil {
		return "-"
	}
	s := r.Action + " ok"
	if !r.OK {
		s = r.Action + " FAILED: " + r.Reason
	} else if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	return s + " " + time.Since(r.At).Round(time.Second).String() + " ago"
}

// probeMain is `entrypoint probe live|ready` for Docker HEALTHCHECK in
// images without curl: exit 0 when the endpoint answers 200.
func probeMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "live" && args[0] != "ready") {
		fmt.Fprintln(stderr, "usage: entrypoint probe live|ready [--url URL] [--timeout 5s] [--wait 30s]")
		return exitUsage
	}
	which := args[0]
	fs := flag.NewFlagSet("entrypoint probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "full URL to probe (default: the health listener of ENTRYPOINT_HEALTH_LISTEN or :9090 on loopback)")
	timeout := fs.Duration("timeout", 5*time.Second, "request timeout")
	wait := fs.Duration("wait", 0, "retry until the probe passes or this much time went by (a helm test right after install, before the Service is programmed)")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if *url == "" {
		*url = defaultProbeURL(which)
	}
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{
		// The probe checks the init, not the certificate chain: the
		// health cert is often self-signed.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}}
	deadline := time.Now().Add(*wait)
	for {
		body, err := probeOnce(client, *url)
		if err == nil || !time.Now().Before(deadline) {
			stdout.Write(body)
			if len(body) > 0 && body[len(body)-1] != '\n' {
				fmt.Fprintln(stdout)
			}
			if err != nil {
				fmt.Fprintf(stderr, "probe %s: %v\n", which, err)
				return 1
			}
			return 0
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// probeOnce GETs url; the body is returned also when the status is not 200.
func probeOnce(client *http.Client, url string) ([]byte, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return body, nil
}

// defaultProbeURL finds the health listener the way the running init
// did: from PID 1's own command line when PID 1 is entrypoint (a
// HEALTHCHECK runs in the container), else from the env and config file.
func defaultProbeURL(which string) string {
	listen, tls := config.DefaultHealthListen, false
	if cfg := initConfig(); cfg != nil {
		listen, tls = cfg.Health.Listen, cfg.Health.TLSCert != ""
	} else {
		listen = envOr("ENTRYPOINT_HEALTH_LISTEN", listen)
		tls = os.Getenv("ENTRYPOINT_HEALTH_TLS_CERT") != ""
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		host, port = "", "9090"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	path := "/livez"
	if which == "ready" {
		path = "/readyz"
	}
	return scheme + "://" + net.JoinHostPort(strings.Trim(host, "[]"), port) + path + "?verbose"
}

// initConfig loads the config of the entrypoint that is PID 1, from its
// command line and our (the same container's) env; nil when PID 1 is not
// entrypoint or its command line cannot be read.
func initConfig() *config.Config {
	b, err := os.ReadFile("/proc/1/cmdline")
	if err != nil {
		return nil
	}
	argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	pid1, _ := os.Readlink("/proc/1/exe")
	self, _ := os.Readlink("/proc/self/exe")
	if len(argv) == 0 || (pid1 != self && !strings.HasPrefix(filepath.Base(argv[0]), "entrypoint")) {
		return nil
	}
	cfg, err := config.Load(argv[1:], nil)
	if err != nil {
		return nil
	}
	return cfg
}

// defaultControlSocket is where the CLI finds its init without
// --control-socket: ENTRYPOINT_CONTROL_SOCKET, else the one PID 1 was
// started with when PID 1 is entrypoint, else the default; "" when PID 1
// runs without one.
func defaultControlSocket() string {
	if v := os.Getenv("ENTRYPOINT_CONTROL_SOCKET"); v != "" {
		return v
	}
	if cfg := initConfig(); cfg != nil {
		return cfg.ControlSocket
	}
	return config.DefaultControlSocket
}

func envBool(k string) bool {
	b, _ := strconv.ParseBool(os.Getenv(k))
	return b
}

func envOr(k, def string) string {
	if v, ok := os.LookupEnv(k); ok && v != "" {
		return v
	}
	return def
}
