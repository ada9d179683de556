package main

import "github.com/rktng/rkt/stage0"

func init() {
	registerApp(appAction("rm", "Remove an app from a running mutable pod, stopping it first if it runs", stage0.RemoveApp))
}
