package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Load builds the validated Config from args (everything after the program
// name: flags, then optionally "--" and the app's command), the ENTRYPOINT_*
// environment, and the YAML file named by --config, ENTRYPOINT_CONFIG or,
// if it exists, DefaultFile. The environment is read through getenv; nil
// means the process environment, read by envconfig.Process.
//
// Precedence is flags, env, file, defaults. The command and the per-app
// flags describe the first app: with no apps in the file they create it,
// otherwise the command replaces apps[0].command and the flags override
// apps[0]'s fields. An empty env var counts as unset.
//
// On -h or --help, Load writes Usage() to stderr, as the flag package does,
// and returns an error wrapping flag.ErrHelp (exit 0). Any other error lists
// every problem found, one per line.
// Load is safe for concurrent use.
func Load(args []string, getenv func(string) (string, bool)) (*Config, error) {
	cfg, err := load(args, getenv, DefaultFile)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stderr, Usage())
	}
	return cfg, err
}

func load(args []string, getenv func(string) (string, bool), defaultFile string) (*Config, error) {
	opts := options()
	flagVals, command, err := parseFlags(opts, args)
	if err != nil {
		return nil, err
	}
	env, err := readEnv(opts, getenv)
	if err != nil {
		return nil, err
	}
	p := newProblems()
	cfg := &Config{}

	file, explicit := defaultFile, false
	for i, o := range opts {
		if o.name == configOption && env[i].val != "" {
			file, explicit = env[i].val, true
		}
	}
	if v, ok := flagVals[configOption]; ok {
		file, explicit = last(v), true
	}
	if file != "" {
		data, err := readFile(file)
		switch {
		case err == nil:
			p.file = file
			cfg.Source = file
			decodeFile(file, data, cfg, p)
		case explicit || !errors.Is(err, fs.ErrNotExist):
			p.add(file, "cannot read the config file: %v; fix the path given with --config or ENTRYPOINT_CONFIG", unwrapPathErr(err))
		}
	}
	if cfg.Source == "" {
		cfg.Source = "command line"
	}

	for i := range opts {
		o := &opts[i]
		if o.set == nil {
			continue
		}
		v := env[i].val
		if !env[i].set || strings.TrimSpace(v) == "" {
			continue
		}
		vals := []string{v}
		if o.list {
			vals = splitList(v)
		}
		apply(cfg, o, vals, o.env(), p)
	}
	for i := range opts {
		o := &opts[i]
		if v, ok := flagVals[o.name]; ok && o.set != nil {
			apply(cfg, o, v, "--"+o.name, p)
		}
	}
	if len(command) > 0 {
		ensureApp(cfg)
		cfg.Apps[0].Command = command
		p.origin["apps[0].command"] = "the command after --"
	}

	setDefaults(cfg)
	validate(cfg, p)
	if cfg.ControlSocket == Off {
		// types.go: after defaults, "" means the control socket is off.
		cfg.ControlSocket = ""
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func ensureApp(cfg *Config) {
	if len(cfg.Apps) == 0 {
		cfg.Apps = []App{{}}
	}
}

// apply sets one option from one layer and records where the value came
// from, so later validation names the flag or variable the user wrote.
func apply(cfg *Config, o *option, vals []string, label string, p *problems) {
	var a *App
	if o.app {
		ensureApp(cfg)
		a = &cfg.Apps[0]
	}
	if len(vals) == 0 && !o.list {
		vals = []string{""}
	}
	if err := o.set(cfg, a, vals); err != nil {
		p.add(label, "%v", err)
		p.bad[o.path()] = true
		return
	}
	p.origin[o.path()] = label
}

// parseFlags returns the raw values of each flag given (every occurrence,
// comma-split for list flags) and the command after the flags.
func parseFlags(opts []option, args []string) (map[string][]string, []string, error) {
	fset := flag.NewFlagSet("entrypoint", flag.ContinueOnError)
	// Errors and usage are the caller's to print, once.
	fset.SetOutput(io.Discard)
	fset.Usage = func() {}
	vals := map[string][]string{}
	for i := range opts {
		o := &opts[i]
		if o.envOnly {
			continue
		}
		fset.Var(&rawFlag{opt: o, vals: vals}, o.name, o.help)
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, err
		}
		return nil, nil, flagError(err, opts)
	}
	return vals, fset.Args(), nil
}

// rawFlag stores what was written and never fails, so that every bad value
// is reported together after parsing rather than the first one alone.
type rawFlag struct {
	opt  *option
	vals map[string][]string
}

func (f *rawFlag) String() string { return "" }

func (f *rawFlag) IsBoolFlag() bool { return f.opt.boolean }

func (f *rawFlag) Set(s string) error {
	if f.opt.list {
		f.vals[f.opt.name] = append(f.vals[f.opt.name], splitList(s)...)
	} else {
		f.vals[f.opt.name] = append(f.vals[f.opt.name], s)
	}
	return nil
}

func flagError(err error, opts []option) error {
	msg := clip(err.Error())
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var names []string
		for _, o := range opts {
			if !o.envOnly {
				names = append(names, o.name)
			}
		}
		hint := "run entrypoint -h for the list"
		if s := suggest(name, names); s != "" {
			hint = fmt.Sprintf("did you mean --%s?", s)
		}
		return fmt.Errorf("--%s: unknown flag; %s (the app's own flags go after --, like `entrypoint -- /app/server --port 8080`)", name, hint)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Errorf("--%s: needs a value, like --%s=VALUE", name, name)
	}
	return fmt.Errorf("parse flags: %w", err)
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
