// Package atomicwriter reproduces, step by step, how the kubelet updates a
// ConfigMap, Secret, downwardAPI or projected volume, so that tests can put
// a watcher through exactly what it meets in a pod.
//
// The visible files of such a volume are symlinks into ..data, and ..data
// is itself a symlink to a hidden timestamped directory holding the real
// files:
//
//	app.yaml -> ..data/app.yaml
//	..data   -> ..2026_11_25_08_00_00.123456789
//	..2026_11_25_08_00_00.123456789/app.yaml
//
// An update writes a new timestamped directory, points a ..data_tmp symlink
// at it and renames ..data_tmp over ..data (rename(2) is atomic, so a reader
// sees the old set of files or the new one, never a mix), then adds the
// symlinks of new keys, removes those of deleted keys and removes the old
// timestamped directory. A subPath mount binds one of those files at pod
// start and so never sees an update.
//
// It is a test helper: it owns nothing at run time and must never be used
// by the init itself. Unlike the kubelet it writes even when nothing
// changed, because an identical rewrite is something a watcher must
// survive.
package atomicwriter
