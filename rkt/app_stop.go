package main

import "github.com/rktng/rkt/stage0"

func init() {
	registerApp(appAction("stop", "Stop an app of a running mutable pod (SIGTERM, then SIGKILL after 10 s)", stage0.StopApp))
}
