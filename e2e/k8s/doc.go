// Package k8s holds the tests of charts/entrypoint: template assertions
// (TestChart*, need helm, skipped without it) and the end-to-end suite on a
// real Kubernetes node (TestCluster*, run only with ENTRYPOINT_E2E_K8S=1,
// normally through e2e/k8s/run.sh, which starts k8s-local, loads the images
// and installs the chart).
//
// The suite drives kubectl and helm through os/exec, so it tests what a user
// types. It sends its traffic to the Service's NodePort on the node IP of
// k8s-local (10.244.77.1), which this machine owns, and reads pod IPs on the
// same bridge; it never talks to anything off the machine.
//
// It must never leave a release behind on success: every test uninstalls
// what it installed (unless ENTRYPOINT_E2E_KEEP=1, for debugging).
package k8s
