package main

import "github.com/rktng/rkt/stage0"

func init() {
	registerApp(appAction("start", "Start an added app of a running mutable pod", stage0.StartApp))
}
