// Command pause is the sandbox's pod-infrastructure ("pause") container: the
// process that holds a pod's network namespace open while the pod's own
// containers come and go.  Nothing can be pulled in the sandbox, so
// sandbox/node-up.sh builds the image k8s-demo-sandbox/pause from this binary.
//
// As PID 1 of the pod sandbox it reaps any orphaned child (so no zombie
// lingers) and exits 0 on SIGTERM, SIGINT or SIGHUP, which is what the
// container runtime sends when the pod is deleted.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		// Reap every child that has exited; WNOHANG so that a live child never blocks us.
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
