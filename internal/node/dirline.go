package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard/switchboard/wire"
)

// encodedView is a view's directory message encoded once, less the ages,
// which change with every read: head is the message up to its node list,
// and each part is one node's JSON up to its age_ms value.
type encodedView struct {
	once  sync.Once
	head  []byte
	parts [][]byte
	err   error
}

// directoryLine returns the directory message for a hello as one encoded
// line with ages as of now. The JSON of the nodes is encoded once per
// snapshot, on the first read; every read then only appends the ages.
func (v *view) directoryLine(service, self string, now time.Time) ([]byte, error) {
	v.enc.once.Do(func() { v.enc.head, v.enc.parts, v.enc.err = encodeView(service, self, v) })
	if v.enc.err != nil {
		return nil, v.enc.err
	}
	elapsed := now.Sub(v.taken).Milliseconds()
	size := len(v.enc.head) + 4
	for _, p := range v.enc.parts {
		size += len(p) + 24
	}
	line := make([]byte, 0, size)
	line = append(line, v.enc.head...)
	for i, p := range v.enc.parts {
		if i > 0 {
			line = append(line, ',')
		}
		line = append(line, p...)
		line = strconv.AppendInt(line, max(v.nodes[i].AgeMS+elapsed, 0), 10)
		line = append(line, '}')
	}
	return append(line, "]}\n"...), nil
}

func encodeView(service, self string, v *view) (head []byte, parts [][]byte, err error) {
	empty, err := wire.Encode(wire.DirectoryMessage(&wire.Directory{Service: service, Self: self}))
	if err != nil {
		return nil, nil, err
	}
	const emptyTail = `"nodes":[]}` + "\n"
	if !bytes.HasSuffix(empty, []byte(emptyTail)) {
		return nil, nil, fmt.Errorf("node: unexpected directory encoding %q", empty)
	}
	head = append(empty[:len(empty)-len(emptyTail)], `"nodes":[`...)
	parts = make([][]byte, len(v.nodes))
	for i, n := range v.nodes {
		n.AgeMS = 0
		b, err := json.Marshal(n)
		if err != nil {
			return nil, nil, fmt.Errorf("node: encoding directory entry %s: %w", n.ID, err)
		}
		const ageTail = `"age_ms":0}`
		if !bytes.HasSuffix(b, []byte(ageTail)) {
			return nil, nil, fmt.Errorf("node: directory entry %s does not end with age_ms: %q", n.ID, b)
		}
		parts[i] = b[:len(b)-len("0}")]
	}
	return head, parts, nil
}
