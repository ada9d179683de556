package fetch

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws one self-overwriting line on a terminal. The CLI passes a
// writer only when stderr is a TTY, so logs and pipes never see it.
type progress struct {
	// verb says what moves the bytes: "Downloading", "Importing".
	verb  string
	w     io.Writer
	label string
	total int64
	n     int64
	last  time.Time
	start time.Time
}

func newProgress(w io.Writer, label string, total int64) *progress {
	if len(label) > 40 {
		label = "..." + label[len(label)-37:]
	}
	return &progress{verb: "Downloading", w: w, label: label, total: total, start: time.Now()}
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) > 100*time.Millisecond {
		p.last = now
		p.draw()
	}
	return len(b), nil
}

func (p *progress) draw() {
	if p.total > 0 {
		const width = 30
		fill := int(int64(width) * p.n / p.total)
		if fill > width {
			fill = width
		}
		fmt.Fprintf(p.w, "\r%s %s: [%s%s] %s / %s ", p.verb, p.label,
			strings.Repeat("=", fill), strings.Repeat(" ", width-fill), size(p.n), size(p.total))
		return
	}
	fmt.Fprintf(p.w, "\r%s %s: %s ", p.verb, p.label, size(p.n))
}

func (p *progress) done() {
	if p.n == 0 {
		// Nothing was read (a local image already in the store).
		return
	}
	p.draw()
	fmt.Fprintln(p.w)
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
