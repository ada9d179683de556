package store

import (
	"io"

	"github.com/ulikunitz/xz"
)

// newXzReader decodes xz in-process, so no xz executable is needed.
func newXzReader(r io.Reader) (io.Reader, error) {
	return xz.NewReader(r)
}
