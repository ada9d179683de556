package main

// Isolator figure: what an app's restrictions cost at start, a fly pod
// whose app gets a capability set, no_new_privs, a seccomp filter and a
// memory limit (pkg/appexec through the launcher, pkg/cgroup host-side),
// beside the same pod without isolators, in its own data directory.

func init() {
	addFigure(figure{name: "isolators: fly pod with caps, nnp, seccomp, memory limit", order: 320,
		goal: "about one static Go program start (the appexec launcher) over the pod without isolators", run: isolatorsFigure})
}

func isolatorsFigure(b *bench) (sample, sample, error) {
	f, err := newFlyBench(b, "isolators")
	if err != nil {
		return sample{}, sample{}, err
	}
	// Remove the pods' cgroups from the host once measured.
	defer func() { _, _ = f.rkt("gc", "--grace-period=0s") }()
	stage1 := "--stage1-path=" + b.image("stage1-fly.aci")
	plain, err := f.medianRun(stage1)
	if err != nil {
		return sample{}, sample{}, err
	}
	plain.label = "same pod, no isolators"
	args := append(f.runArgs(stage1), "--caps-retain=CAP_KILL,CAP_NET_BIND_SERVICE", "--no-new-privileges",
		"--seccomp=mode=remove,errno=EPERM,@rkt/default-blacklist", "--memory=64M")
	d, err := median(b.runs, func() error { _, err := f.rkt(args...); return err })
	return sample{value: d}, plain, err
}
