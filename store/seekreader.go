package store

import (
	"errors"
	"io"
	"os"
)

// seekReader is a buffered reader over a file that can also skip forward
// cheaply: archive/tar seeks over the data of entries a layer does not
// render instead of reading it, and small headers still come from one
// large read.
type seekReader struct {
	f   *os.File
	buf []byte
	r   int // read position in buf
	w   int // end of valid data in buf
	pos int64
}

func newSeekReader(f *os.File, size int) *seekReader {
	return &seekReader{f: f, buf: make([]byte, size)}
}

func (s *seekReader) Read(p []byte) (int, error) {
	if s.r == s.w {
		// Large reads bypass the buffer: file data goes straight to the
		// caller's (already large) buffer.
		if len(p) >= len(s.buf) {
			n, err := s.f.Read(p)
			s.pos += int64(n)
			return n, err
		}
		n, err := s.f.Read(s.buf)
		s.r, s.w = 0, n
		if n == 0 {
			if err == nil {
				err = io.EOF
			}
			return 0, err
		}
	}
	n := copy(p, s.buf[s.r:s.w])
	s.r += n
	s.pos += int64(n)
	return n, nil
}

// Seek supports what archive/tar uses: io.SeekCurrent, to skip forward or
// to learn the position.
func (s *seekReader) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekCurrent {
		return 0, errors.New("seekReader: only io.SeekCurrent is supported")
	}
	return s.skip(off)
}

func (s *seekReader) skip(off int64) (int64, error) {
	if off >= 0 && off <= int64(s.w-s.r) {
		s.r += int(off)
		s.pos += off
		return s.pos, nil
	}
	target := s.pos + off
	if _, err := s.f.Seek(target, io.SeekStart); err != nil {
		return 0, err
	}
	s.r, s.w = 0, 0
	s.pos = target
	return s.pos, nil
}
