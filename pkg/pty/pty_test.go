package pty

import (
	"bufio"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpen(t *testing.T) {
	m, s, err := Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer m.Close()
	defer s.Close()
	if _, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS); err != nil {
		t.Fatalf("the slave is not a terminal: %v", err)
	}
	if err := SetSize(m, 33, 111); err != nil {
		t.Fatal(err)
	}
	ws, err := unix.IoctlGetWinsize(int(s.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row != 33 || ws.Col != 111 {
		t.Fatalf("size seen from the slave: %+v %v", ws, err)
	}
	// Output on the slave reaches the master, with the line discipline's
	// CR before LF.
	if _, err := s.WriteString("hello\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(m).ReadString('\n')
	if err != nil || line != "hello\r\n" {
		t.Fatalf("master read %q, %v", line, err)
	}
	if fl, err := unix.FcntlInt(m.Fd(), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("master is not close-on-exec")
	}
	if !strings.HasPrefix(s.Name(), "pts") && !strings.HasPrefix(s.Name(), "/dev/pts/") {
		t.Errorf("slave name %q", s.Name())
	}
}
