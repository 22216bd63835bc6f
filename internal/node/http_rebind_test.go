package node_test

import (
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// The node's own reads beside the web handler's (the drain's progress,
// and with --pprof the profiles) refuse a read under a name the service
// does not publish, as the directory does: a DNS-rebinding page learns
// nothing there either. Over plain HTTP such a page's read has no
// Sec-Fetch-Site and no Origin, like a program's, so a program under
// that name is refused too: it reads by address, by a published name,
// or by a name --ws-origins allows.
func TestNodeReadsRefuseRebindingPages(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.Pprof = true
		cfg.WSOrigins = []string{"ops.example:7071"}
	}})
	n1 := c.Nodes[0]
	for _, path := range []string{"/v1/drain", "/debug/pprof/", "/debug/pprof/cmdline", "/v1/directory"} {
		for _, tt := range []struct {
			name string
			host string
			page bool // a browser's same-origin read over https (Sec-Fetch-Site)
			want int
		}{
			{"a program or a page over http under a foreign name", "rebind.example:7071", false, http.StatusMisdirectedRequest},
			{"a page under a foreign name", "rebind.example:7071", true, http.StatusMisdirectedRequest},
			{"a program under the node's address", n1.HTTPAddr(), false, http.StatusOK},
			{"a page under the node's address", n1.HTTPAddr(), true, http.StatusOK},
			{"a program under a name --ws-origins allows", "ops.example:7071", false, http.StatusOK},
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
