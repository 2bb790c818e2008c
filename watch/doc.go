// Package watch tells when the content of watched files or directories
// really changed: ConfigMap and Secret volumes above all, plain files and
// directories too. It emits "changed" events and does nothing else; what a
// change means (validate, swap) is the supervisor's business.
//
// How: one inotify instance (no polling, no CPU while idle). Every watched
// path is resolved component by component, as open(2) would, and each
// directory where a name is looked up is watched for that name, so a rename
// anywhere on the way (the kubelet's rename of ..data, an editor's
// rename-replace, a directory deleted and recreated, a directory that does
// not exist yet) is an event. A watched directory is watched whole, and the
// regular files it leads to, through symlinks, are watched themselves so
// in-place edits and bind-mounted files are seen. The watch set is rebuilt
// after every structural event; a watch is always added before the
// directory is read, so nothing created in between is missed.
//
// Only real changes count. Events only start a burst; after Debounce of
// quiet (at most 10 Debounce after the burst's first event, so a constant
// stream still settles) a SHA-256 over the files is computed, and a Change
// is emitted only if it differs from the last one emitted. Touching a file,
// an identical rewrite or the kubelet's periodic resync emit nothing.
//
// The hash covers, for every watched path in sorted order, the relative
// path, the permission bits and the content of each regular file reached
// (following symlinks; names starting with ".." are the kubelet's own
// bookkeeping and are skipped, the visible symlinks lead to the same
// files). Permission bits count because the app can observe them: a key
// file turned 0644 is refused by ssh and postgres, one turned 0000 cannot be
// read. The kubelet never changes modes without content, so ConfigMap and
// Secret volumes emit only on content changes. Timestamps, owners and empty
// directories do not count.
//
// A subPath mount binds one file at pod start and never sees an update;
// SubPathWarnings tells when a watched path is such a mount.
package watch
