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
// The environment is read by envconfig: envconfig.Process fills the env
// layer's specification, a struct with one field per option built from
// the option table (envSpec), and envconfig.Usaget renders the variables
// of REFERENCE.md from the same struct. Its fields keep the raw text and
// never fail, because envconfig stops at the first bad variable: each value
// is then parsed by its option's own code, the code its flag uses, so
// every problem is reported at once and a flag and its variable can never
// disagree. Load takes a getenv for tests, which never touch the process
// environment; a test checks that both ways read the same. Unknown
// ENTRYPOINT_* variables are warnings (UnknownEnv), not
// envconfig.CheckDisallowed's refusal: Kubernetes service links put
// ENTRYPOINT_SERVICE_HOST and the like into every pod of a namespace with
// a Service named "entrypoint". Duration and Signal implement
// envconfig.Decoder, so any envconfig struct can use them.
package config
