package stage1

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/rktng/rkt/pkg/pod"
	"golang.org/x/sys/unix"
)

// How the apps' output reaches `rkt run`: inside the pod, each app's
// launcher puts a tee between the app and systemd's journal stream (see
// Tee); the tee also writes into the FIFOs /rkt/iomux/APP.{stdout,stderr},
// which the run entrypoint, outside the pod, reads and copies to its own
// stdout and stderr. With one app the bytes pass unchanged; with several,
// each line gets "[APP] " in front. No pty is involved anywhere, so
// nothing turns "\n" into "\r\n".

// relay is the run entrypoint's end of the FIFOs.
type relay struct {
	wg sync.WaitGroup
	// keep holds a write end of each FIFO so that the readers see no
	// end of file while apps restart or have not opened theirs yet.
	keep []*os.File
	read []*os.File
}

// openRelay opens every app's FIFOs and starts copying.
func openRelay(podDir string, pf *podFiles, stdout, stderr io.Writer) (*relay, error) {
	r := &relay{}
	// The watchdog's FIFO: opened read-write, so that it needs no reader
	// yet and sees end of file exactly when this process is gone.
	alive := filepath.Join(pod.Stage1RootfsPath(podDir), aliveFIFO)
	_ = os.Remove(alive)
	if err := unix.Mkfifo(alive, 0o600); err != nil {
		return nil, err
	}
	af, err := os.OpenFile(alive, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	r.keep = append(r.keep, af)
	prefixed := len(pf.apps) > 1
	var mu sync.Mutex // one line at a time when several apps share an output
	for _, u := range pf.units {
		if !u.Relay {
			continue
		}
		for _, s := range []string{"stdout", "stderr"} {
			path := filepath.Join(pod.Stage1RootfsPath(podDir), iomuxDir, u.Name+"."+s)
			rd, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
			if err != nil {
				r.abort()
				return nil, err
			}
			r.read = append(r.read, rd)
			wr, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0)
			if err != nil {
				r.abort()
				return nil, err
			}
			r.keep = append(r.keep, wr)
			out := stdout
			if s == "stderr" {
				out = stderr
			}
			var prefix []byte
			if prefixed {
				prefix = []byte("[" + u.Name + "] ")
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				copyStream(rd, out, prefix, &mu)
			}()
		}
	}
	return r, nil
}

// copyStream copies src to dst; with a prefix, line by line, holding a
// partial line until its end (or the end of the stream).
func copyStream(src io.Reader, dst io.Writer, prefix []byte, mu *sync.Mutex) {
	buf := make([]byte, 32*1024)
	var pending []byte
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if prefix == nil {
				_, _ = dst.Write(buf[:n])
			} else {
				pending = append(pending, buf[:n]...)
				var out []byte
				for {
					i := bytes.IndexByte(pending, '\n')
					if i < 0 {
						break
					}
					out = append(out, prefix...)
					out = append(out, pending[:i+1]...)
					pending = pending[i+1:]
				}
				if len(out) > 0 {
					mu.Lock()
					_, _ = dst.Write(out)
					mu.Unlock()
				}
			}
		}
		if err != nil {
			break
		}
	}
	if len(pending) > 0 {
		mu.Lock()
		_, _ = dst.Write(append(append(append([]byte{}, prefix...), pending...), '\n'))
		mu.Unlock()
	}
}

// finish waits for every byte the apps wrote: once the pod is gone its
// writers are closed, so dropping our own write ends lets the readers
// drain the FIFOs and reach end of file.
func (r *relay) finish() {
	for _, f := range r.keep {
		f.Close()
	}
	r.wg.Wait()
	for _, f := range r.read {
		f.Close()
	}
}

func (r *relay) abort() {
	for _, f := range append(r.keep, r.read...) {
		f.Close()
	}
}

// feedStdin copies in to the app's input FIFO and closes it, so that the
// app sees end of file where rkt run's stdin ends. Opening blocks until
// the app's service opens its end; if the app never does, the pod's end
// ends this process, and the goroutine with it.
func feedStdin(fifo string, in io.Reader) {
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	// An app that exits before reading everything leaves EPIPE here:
	// its input is no longer anyone's concern.
	_, _ = io.Copy(f, in)
}

// isTerminal says whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
