// Package config turns the command line, the ENTRYPOINT_* environment and
// the optional YAML file into one validated Config, and owns the parsing of
// the value types every other package shares (Duration, Signal, listener
// addresses).
//
// Precedence is flags, then env, then the file, then defaults. The file is
// decoded strictly: an unknown key is an error naming the key and the file,
// so a typo never silently falls back to a default. Every problem found is
// reported at once (errors.Join), each naming where the value came from
// (--flag, ENTRYPOINT_VAR, or "FILE: apps[1].field") and how to fix it.
//
// The package only reads: it never binds sockets, starts processes or reads
// token files; it checks that values are well formed, not that the world
// agrees with them. It holds no package-level mutable state.
//
// Environment variables are read with the same option table as the flags
// rather than through envconfig.Process, because envconfig stops at the first
// bad variable and reads only the process environment; Duration and Signal
// still implement envconfig.Decoder so any envconfig struct can use them.
package config
