package bus

import "testing"

// RedactURLs hides every credential a --bus list can hold, a NATS token
// in the user's place included, which url.URL.Redacted leaves as it is.
func TestRedactURLs(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"nats://h:4222", "nats://h:4222"},
		{"nats://s3cr3tToken@h:4222", "nats://xxxxx@h:4222"},
		{"nats://u:p@h:4222,tls://h2:4222", "nats://u:xxxxx@h:4222,tls://h2:4222"},
		{"nats://u:p%zz@h", "nats://(hidden: it holds credentials)"},
	} {
		if got := RedactURLs(tt.in); got != tt.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
