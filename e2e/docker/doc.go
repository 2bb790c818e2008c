// Package dockere2e is the black-box suite for the container image: it
// builds the Dockerfile's targets, runs them on a real Docker engine and
// checks what a user of the image sees from the host: entrypoint is PID 1,
// orphans are reaped, `docker stop` drains and keeps the app's exit code,
// every swap trigger (docker kill -s USR1, kill inside the container,
// `entrypoint reload`, a watched config directory) swaps the app with no
// failed request, a shell under `docker run -it` has job control, the image
// runs read-only as non-root with no capabilities, and bad input ends the
// container with one line that says what to fix.
//
// The tests carry the build tag e2e_docker, so `go test ./...` skips them.
// Run them with e2e/docker/run.sh, which installs and starts a Docker
// engine when none answers, builds the offline builder image
// (docker/make-builder-image.sh) and prints "N passed, N failed".
//
// All traffic stays on 127.0.0.1: ports are published on loopback only.
// Containers and images this suite makes carry the label
// io.entrypoint.e2e=1; nothing else on the engine is touched.
package dockere2e
