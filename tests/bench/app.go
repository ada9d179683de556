package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Mutable pods: `rkt app add` + `rkt app start` into a running sandbox
// until the app answers HTTP, beside `rkt run` of the same app in a new
// pod until it answers (what a pod per app would cost instead).

func init() {
	addFigure(figure{name: "mutable pod: app add + app start inspect -serve-http until it answers (--net=host)", order: 340,
		goal: "well below a new pod", run: appAddStartFigure})
}

func appFreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// appWaitHTTP polls addr until it answers, for at most 30 s.
func appWaitHTTP(addr string) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

func appAddStartFigure(b *bench) (sample, sample, error) {
	f, err := setupNspawn(b)
	if err != nil {
		return sample{}, sample{}, err
	}
	defer nspawnDone(f)
	stage1 := "--stage1-path=" + b.image("stage1.aci")
	uuidFile := filepath.Join(f.dir, "sandbox-uuid")
	os.Remove(uuidFile)
	sb := exec.Command(b.rkt(), "--dir="+f.dir, "--local-config="+f.dir+"/lc", "--system-config="+f.dir+"/sc",
		"--user-config="+f.dir+"/uc", "app", "sandbox", stage1, "--net=host", "--uuid-file-save="+uuidFile)
	if err := sb.Start(); err != nil {
		return sample{}, sample{}, err
	}
	defer func() { _ = sb.Wait() }()
	var uuid string
	for deadline := time.Now().Add(30 * time.Second); uuid == ""; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(uuidFile); err == nil {
			uuid = strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			_ = sb.Process.Kill()
			return sample{}, sample{}, fmt.Errorf("sandbox did not start")
		}
	}
	defer func() { _, _ = f.rkt("stop", uuid) }()
	if _, err := f.rkt("status", "--wait-ready=30s", uuid); err != nil {
		return sample{}, sample{}, err
	}
	var runs []time.Duration
	for i := 0; i < b.runs; i++ {
		port, err := appFreePort()
		if err != nil {
			return sample{}, sample{}, err
		}
		start := time.Now()
		if _, err := f.rkt("app", "add", uuid, flyInspect, "--name=web", "--", "-serve-http=127.0.0.1:"+port); err != nil {
			return sample{}, sample{}, err
		}
		if _, err := f.rkt("app", "start", uuid, "--app=web"); err != nil {
			return sample{}, sample{}, err
		}
		if err := appWaitHTTP("127.0.0.1:" + port); err != nil {
			return sample{}, sample{}, err
		}
		runs = append(runs, time.Since(start))
		// Not measured: the next run adds the app afresh.
		if _, err := f.rkt("app", "rm", uuid, "--app=web"); err != nil {
			return sample{}, sample{}, err
		}
	}
	d := medianOf(runs)
	ref, err := runUntilAnswers(b, f, stage1)
	return sample{value: d}, sample{label: "rkt run of the same app until it answers", value: ref}, err
}

// runUntilAnswers is the reference of the figures that start an app in a
// pod some other way: the median of `rkt run` of the inspect app serving
// HTTP, on the host network, until it answers.
func runUntilAnswers(b *bench, f *flyBench, stage1 string) (time.Duration, error) {
	return median(b.runs, func() error {
		port, err := appFreePort()
		if err != nil {
			return err
		}
		cmd := exec.Command(b.rkt(), "--dir="+f.dir, "--local-config="+f.dir+"/lc", "--system-config="+f.dir+"/sc",
			"--user-config="+f.dir+"/uc", "run", stage1, "--net=host", flyInspect, "--", "-serve-http=127.0.0.1:"+port)
		if err := cmd.Start(); err != nil {
			return err
		}
		err = appWaitHTTP("127.0.0.1:" + port)
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		return err
	})
}
