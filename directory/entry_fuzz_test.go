package directory_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/directory"
)

// FuzzEntry decodes any bytes as a node's published entry the way a node
// receives one (JSON, then Validate) and checks the decoder against
// plain rules:
//
//   - decoding and validating never panic; Validate's errors name the
//     package;
//   - Validate accepts exactly the entries with an ID, an address, a
//     status of 1 to 16 lower-case letters (known or a later version's)
//     and no negative users or capacity;
//   - an accepted entry survives encoding and decoding unchanged, and
//     EncodedSize bounds its node's encoding (with the comma after it).
//
// The seed corpus is in testdata/fuzz/FuzzEntry; inputs the fuzzer finds
// land there too and are kept as regression cases.
func FuzzEntry(f *testing.F) {
	for _, s := range []string{
		`{"id":"n1","addr":"10.0.0.1:7070","status":"up","users":3,"capacity":10,"inc":1,"seq":2}`,
		`{"id":"n1","addr":"a:1","status":"sleeping","users":0,"capacity":0,"inc":1,"seq":1}`,
		`{"id":"","addr":"a:1","status":"up"}`,
		`{"id":"<&>\u2028","addr":"\"\\","http":"h:1","group":"eu/a","status":"draining","version":"v1\u0000","age_ms":-5}`,
		`{"id":"x","addr":"a","status":"down","users":-1}`,
		`{"id":"x","addr":"a","status":"full","users":1e3}`,
		`{"id":1}`, `null`, `[]`, `{"inc":-1}`, "{\"id\":\"\xff\",\"addr\":\"a\",\"status\":\"up\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e directory.Entry
		if err := json.Unmarshal(data, &e); err != nil {
			return
		}
		err := e.Validate()
		word := len(e.Status) >= 1 && len(e.Status) <= 16 && strings.Trim(string(e.Status), "abcdefghijklmnopqrstuvwxyz") == ""
		wantValid := e.ID != "" && e.Addr != "" && word && e.Users >= 0 && e.Capacity >= 0
		if (err == nil) != wantValid {
			t.Fatalf("Validate(%+v) = %v, want valid %v", e, err, wantValid)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "directory: ") {
				t.Fatalf("Validate error %q does not name the package", err)
			}
			return
		}
		enc, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("encoding %+v: %v", e, err)
		}
		var back directory.Entry
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("decoding %s again: %v", enc, err)
		}
		if diff := cmp.Diff(back, e); diff != "" {
			t.Fatalf("entry changed through JSON (-got +want):\n%s", diff)
		}
		node, err := json.Marshal(e.Node)
		if err != nil {
			t.Fatal(err)
		}
		if size := directory.EncodedSize(e.Node); size < len(node)+1 {
			t.Fatalf("EncodedSize = %d, but %s takes %d bytes and a comma", size, node, len(node))
		}
	})
}
