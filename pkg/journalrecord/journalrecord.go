// Package journalrecord owns the reading of journal records as
// `journalctl --output=json --all` prints them: the fields an app's
// output keeps (its text, priority, where journald cut it, time, cursor),
// for stage1's `logs` and rkt-cri's container logs.
package journalrecord

import (
	"encoding/json"
	"strconv"
)

// Record is one journal record, the fields that matter for an app's output.
type Record struct {
	// Message is a string, or an array of bytes when the text is not
	// valid UTF-8 (null only without journalctl's --all).
	Message  json.RawMessage `json:"MESSAGE"`
	Priority string          `json:"PRIORITY"`
	// LineBreak is journald's reason for ending the record, "line-max"
	// when the line was longer than its LineMax and goes on in the next
	// record of the stream.
	LineBreak string `json:"_LINE_BREAK"`
	Realtime  string `json:"__REALTIME_TIMESTAMP"`
	Cursor    string `json:"__CURSOR"`
}

// Text is the record's message as the app wrote it.
func (r Record) Text() []byte {
	var s string
	if json.Unmarshal(r.Message, &s) == nil {
		return []byte(s)
	}
	var ints []int
	if json.Unmarshal(r.Message, &ints) != nil {
		return nil
	}
	b := make([]byte, len(ints))
	for i, v := range ints {
		b[i] = byte(v)
	}
	return b
}

// Partial tells whether the record is a piece of a longer line, which the
// next record of the same stream continues.
func (r Record) Partial() bool { return r.LineBreak == "line-max" }

// Stderr tells whether the record came from an app's stderr: stage1
// records stderr lines with priority 3 (err) and stdout lines with 6
// (info); a line that set its own priority with an sd-daemon prefix is
// judged by that, 3 or more urgent being stderr.
func (r Record) Stderr() bool {
	p, err := strconv.Atoi(r.Priority)
	return err == nil && p <= 3
}
