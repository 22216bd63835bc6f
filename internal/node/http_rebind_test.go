package node_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// The node's own reads beside the web handler's (the drain's progress,
// and with --pprof the profiles) refuse a browser's same-origin read
// under a name the service does not publish, as the directory does: a
// DNS-rebinding page learns nothing there either. Programs read them
// under any name.
func TestNodeReadsRefuseRebindingPages(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) { cfg.Pprof = true }})
	n1 := c.Nodes[0]
	for _, path := range []string{"/v1/drain", "/debug/pprof/", "/debug/pprof/cmdline", "/v1/directory"} {
		for _, tt := range []struct {
			name string
			host string
			page bool // a browser's same-origin read
			want int
		}{
			{"a program under a foreign name", "rebind.example:7071", false, http.StatusOK},
			{"a page under a foreign name", "rebind.example:7071", true, http.StatusMisdirectedRequest},
			{"a page under the node's address", n1.HTTPAddr(), true, http.StatusOK},
		} {
			req, err := http.NewRequest(http.MethodGet, "http://"+n1.HTTPAddr()+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			if tt.page {
				req.Header.Set("Sec-Fetch-Site", "same-origin")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s, %s: %s, want %d", path, tt.name, resp.Status, tt.want)
			}
		}
	}
}
