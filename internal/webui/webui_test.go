package webui_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/webui"
)

func TestHandler(t *testing.T) {
	h := webui.Handler()
	for _, tt := range []struct {
		path, wantType, wantBody string
		want                     int
	}{
		{"/", "text/html", "<title>Switchboard: real-time text</title>", 200},
		{"/dashboard", "text/html", "<title>Switchboard: cluster dashboard</title>", 200},
		{"/static/rtt.js", "text/javascript", "export class Room", 200},
		{"/static/pick.js", "text/javascript", "export function byName", 200},
		{"/static/style.css", "text/css", "", 200},
		{"/nope", "", "", 404},
		{"/static/nope.js", "", "", 404},
	} {
		r := httptest.NewRequest("GET", tt.path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want || !strings.HasPrefix(w.Header().Get("Content-Type"), tt.wantType) || !strings.Contains(w.Body.String(), tt.wantBody) {
			t.Errorf("GET %s: %d %q, want %d %q holding %q", tt.path, w.Code, w.Header().Get("Content-Type"), tt.want, tt.wantType, tt.wantBody)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tt.path, csp)
		}
	}
}
