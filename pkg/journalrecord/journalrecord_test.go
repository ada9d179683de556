package journalrecord

import (
	"encoding/json"
	"testing"
)

func TestRecord(t *testing.T) {
	for _, c := range []struct {
		js              string
		text            string
		partial, stderr bool
	}{
		{`{"MESSAGE":"hello","PRIORITY":"6"}`, "hello", false, false},
		{`{"MESSAGE":"oops","PRIORITY":"3","_LINE_BREAK":"line-max"}`, "oops", true, true},
		{`{"MESSAGE":[104,105,255],"PRIORITY":"2"}`, "hi\xff", false, true},
		{`{"MESSAGE":null,"PRIORITY":"x"}`, "", false, false},
		{`{"MESSAGE":"eof","_LINE_BREAK":"eof"}`, "eof", false, false},
	} {
		var r Record
		if err := json.Unmarshal([]byte(c.js), &r); err != nil {
			t.Fatal(err)
		}
		if string(r.Text()) != c.text || r.Partial() != c.partial || r.Stderr() != c.stderr {
			t.Errorf("%s: text %q partial %v stderr %v", c.js, r.Text(), r.Partial(), r.Stderr())
		}
	}
}
