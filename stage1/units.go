// Package stage1 owns the default stage1: a pod booted by systemd-nspawn
// with systemd as its PID 1 and each app a systemd service that our
// launcher (pkg/appexec) chroots into the app's root. It writes the pod's
// systemd configuration from the pod manifest and runtime-config, starts
// nspawn, relays the apps' output, records their exit statuses, and
// implements the stop and gc entrypoints. The multi-call binary in
// stage1/cmd/stage1 dispatches to it; networking is stage1/network's.
package stage1

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rktng/rkt/pkg/pod"
)

// Paths inside the stage1 root (as the pod sees them).
const (
	// unitDir holds the pod's generated units; the static ones ship in
	// the image under /usr/lib/systemd/system.
	unitDir = "/etc/systemd/system"
	// appexecDir holds one appexec.Config per app and event handler.
	appexecDir = "/rkt/appexec"
	// iomuxDir holds the FIFOs through which the apps' output reaches
	// the run entrypoint.
	iomuxDir = "/rkt/iomux"
	// appsFile lists the pod's apps, one a line, in manifest order: the
	// reaper reads it to know when the last app has exited.
	appsFile = "/rkt/apps"
	// volumesDir is where nspawn binds the pod's volumes.
	volumesDir = pod.VolumesInStage1
	// pidsDir holds each running app's PID in the pod's PID namespace.
	pidsDir = "/rkt/pids"

	// Multi-call names, linked to the stage1 binary at the image's root.
	launcherPath = "/appexec"
	reaperPath   = "/reaper"

	// aliveFIFO is held open by the run entrypoint for the pod's life.
	aliveFIFO = "/rkt/iomux/alive"

	// hostDevDir is where a privileged pod has the host's /dev.
	hostDevDir = "/rkt/hostdev"
)

// appUnit describes the systemd service of one app.
type appUnit struct {
	Name string
	// PreStart and PostStop are appexec config files, in order.
	PreStart, PostStop []string
	// Binds are "SRC:DST[:OPTS]" for BindPaths=, ROBinds for
	// BindReadOnlyPaths=, both relative to the stage1 root.
	Binds, ROBinds []string
	// Interactive connects the app to the pod's console.
	Interactive bool
	// Relay says the app's output also goes to the run entrypoint.
	Relay bool
	// Tee puts the launcher's tee between the app and the journal even
	// without a relay (an app added to a mutable pod), for what the tee
	// does to the journal: whole lines, stdout and stderr told apart by
	// priority (see Tee).
	Tee bool
	// StdinFIFO, if set, is the FIFO the app reads its input from.
	StdinFIFO string
	// Streams, if set, are the app's attachable stream modes: the tee
	// serves them to `rkt attach` (see attachEnv).
	Streams *pod.Streams
	// Notify: the app says when it is ready (sd_notify), and its unit
	// is started only then (see notify.go).
	Notify bool
	// Listen, if set, is where the app's launcher gets the sockets rkt
	// run was passed (see activation.go).
	Listen string
	// StopTimeout is how long the app has between SIGTERM and SIGKILL.
	StopTimeoutSec int
	// Properties are extra [Service] lines (resource limits on cgroup v2).
	Properties []string
}

// serviceName is the unit of app; appc app names ([a-z0-9-]) are valid
// unit names as they are.
func serviceName(app string) string { return app + ".service" }

// unitText renders the app's service.
func (u *appUnit) unitText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[Unit]\nDescription=Application=%s\n", u.Name)
	// No default dependencies: the pod has no basic.target to wait for.
	b.WriteString("DefaultDependencies=no\n")
	b.WriteString("Wants=systemd-journald.socket\nAfter=systemd-journald.socket\n")
	b.WriteString("Conflicts=shutdown.target\nBefore=shutdown.target\n")
	if u.Notify {
		// NotifyAccess=all: the message may come from any process of
		// the app, as it may be a child of what the launcher became.
		b.WriteString("\n[Service]\nType=notify\nNotifyAccess=all\nRestart=no\n")
	} else {
		b.WriteString("\n[Service]\nType=simple\nRestart=no\n")
	}
	// The pod's exit code is the apps', never systemd's view of them.
	b.WriteString("SuccessExitStatus=0-255\n")
	fmt.Fprintf(&b, "SyslogIdentifier=%s\n", u.Name)
	for _, p := range u.PreStart {
		fmt.Fprintf(&b, "ExecStartPre=%s %s\n", launcherPath, p)
	}
	cfg := filepath.Join(appexecDir, u.Name+".json")
	if (u.Relay || u.Tee || u.Streams != nil) && !u.Interactive {
		fmt.Fprintf(&b, "Environment=RKT_IOMUX=%s\n", iomuxDir)
	}
	if u.Streams != nil {
		fmt.Fprintf(&b, "Environment=%s=%s\n", attachEnv, formatStreams(*u.Streams))
	}
	if u.StdinFIFO != "" {
		fmt.Fprintf(&b, "Environment=%s=%s\n", stdinEnv, u.StdinFIFO)
	}
	if u.Listen != "" {
		fmt.Fprintf(&b, "Environment=%s=%s\n", listenEnv, u.Listen)
	}
	fmt.Fprintf(&b, "ExecStart=%s %s\n", launcherPath, cfg)
	for _, p := range u.PostStop {
		fmt.Fprintf(&b, "ExecStopPost=-%s %s\n", launcherPath, p)
	}
	// Last: record the exit status and end the pod after its last app.
	// "+": the reaper needs none of the app's namespacing, and building
	// the unit's mount namespace again for it cost ~15 ms per pod end.
	fmt.Fprintf(&b, "ExecStopPost=+%s %s\n", reaperPath, u.Name)
	if u.Interactive {
		b.WriteString("StandardInput=tty-force\nStandardOutput=tty\nStandardError=tty\nTTYPath=/dev/console\n")
	} else {
		b.WriteString("StandardInput=null\nStandardOutput=journal\nStandardError=journal\n")
	}
	// SIGTERM to every process of the app, SIGKILL after the timeout. The
	// launcher's tee ignores SIGTERM and leaves once it has drained the
	// app's output; "mixed" would SIGKILL it as soon as the app exits.
	b.WriteString("KillMode=control-group\n")
	if u.StopTimeoutSec > 0 {
		fmt.Fprintf(&b, "TimeoutStopSec=%d\n", u.StopTimeoutSec)
	}
	// Each bind gives the app a mount namespace of its own, set up by
	// systemd before the launcher chroots.
	for _, s := range u.Binds {
		fmt.Fprintf(&b, "BindPaths=%s\n", s)
	}
	for _, s := range u.ROBinds {
		fmt.Fprintf(&b, "BindReadOnlyPaths=%s\n", s)
	}
	for _, p := range u.Properties {
		fmt.Fprintf(&b, "%s\n", p)
	}
	return b.String()
}

// podTargetText is default.target: it pulls in every app.
func podTargetText(apps []string) string {
	units := make([]string, len(apps))
	for i, a := range apps {
		units[i] = serviceName(a)
	}
	sort.Strings(units)
	// journald starts with the apps rather than on their first line: the
	// last app's exit waits for it.
	return "[Unit]\nDescription=rkt pod\nDefaultDependencies=no\nWants=systemd-journald.socket systemd-journald.service rkt-watch.service " +
		strings.Join(units, " ") + "\n"
}

// staticUnits are the pod's fixed units, written into the image at build
// time (see the gen-units mode): the journal, and the shutdown path that
// both the last app's reaper and `rkt stop` take. Everything else systemd
// would start at boot (tmpfiles, sysusers, udev, getty, logind, utmp) is
// simply absent.
var staticUnits = map[string]string{
	"systemd-journald.socket": `[Unit]
Description=Journal sockets
DefaultDependencies=no
Before=sockets.target

[Socket]
ListenStream=/run/systemd/journal/stdout
ListenDatagram=/run/systemd/journal/socket
SocketMode=0666
PassCredentials=yes
PassSecurity=yes
ReceiveBuffer=8M
Service=systemd-journald.service
`,
	"systemd-journald.service": `[Unit]
Description=Journal service
DefaultDependencies=no
Requires=systemd-journald.socket
After=systemd-journald.socket

[Service]
Type=notify
Sockets=systemd-journald.socket
ExecStart=/usr/lib/systemd/systemd-journald
StandardOutput=null
FileDescriptorStoreMax=4224
KillMode=mixed
TimeoutStopSec=5
`,
	// rkt-watch ends the pod when the run entrypoint dies (SIGKILL): the
	// pod's init outlives nspawn otherwise.
	"rkt-watch.service": `[Unit]
Description=Pod watchdog
DefaultDependencies=no

[Service]
ExecStart=/podwatch
StandardOutput=null
`,
	"shutdown.target": `[Unit]
Description=Apps stopped
DefaultDependencies=no
`,
	// rkt-exit stops every app (they conflict with shutdown.target), and
	// then asks the manager to exit, which in a container ends PID 1. The
	// last app's reaper has had journald write out the apps' output.
	"rkt-exit.service": `[Unit]
Description=Pod exit
DefaultDependencies=no
Requires=shutdown.target
After=shutdown.target

[Service]
Type=oneshot
ExecStart=/usr/bin/systemctl --force exit
`,
	"exit.target":     exitTarget,
	"halt.target":     exitTarget,
	"poweroff.target": exitTarget,
	"reboot.target":   exitTarget,
}

const exitTarget = `[Unit]
Description=Pod exit
DefaultDependencies=no
Requires=rkt-exit.service
After=rkt-exit.service
AllowIsolate=yes
`

// journaldConf keeps the pod's journal small. Storage is "volatile"
// because nspawn binds the stage1 root's /var/log/journal over
// /run/log/journal: journald writes to disk at once, without waiting for
// a flush request, and the journal outlives the pod. LineMax is the
// apps' tee's journalLineMax, named so that a change of journald's
// default cannot part them.
const journaldConf = `[Journal]
LineMax=48K
Storage=volatile
RuntimeMaxUse=8M
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitBurst=0
`
