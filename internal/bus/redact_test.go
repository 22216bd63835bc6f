package bus

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
)

// RedactURLs hides every credential a --bus list can hold, a NATS token
// in the user's place included, which url.URL.Redacted leaves as it is.
func TestRedactURLs(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"nats://h:4222", "nats://h:4222"},
		{"nats://s3cr3tToken@h:4222", "nats://xxxxx@h:4222"},
		{"nats://u:p@h:4222,tls://h2:4222", "nats://u:xxxxx@h:4222,tls://h2:4222"},
		{"nats://u:p%zz@h", "(hidden: it holds credentials)"},
		// nats.go takes URLs without a scheme: their users are users too.
		{"sys:S3cretPw@127.0.0.1:4999", "(hidden: it holds credentials)"},
		{"nats://127.0.0.1:4999,user:S3cretPw@127.0.0.1:4998", "(hidden: it holds credentials)"},
		{"nats://h:4222, nats://u:p@h2:4222", "nats://h:4222,nats://u:xxxxx@h2:4222"},
		// A password with a space does not parse; one with a comma
		// spans two items, the first of which holds no "@".
		{"nats://sys:pa ss@127.0.0.1:4999", "(hidden: it holds credentials)"},
		{"nats://u:S3cret,Pw@h:4222", "(hidden: it holds credentials)"},
	} {
		if got := RedactURLs(tt.in); got != tt.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestConnectErrorHidesCredentials: the error of a bus that does not
// answer names it without the password or token in its URL, as every
// other place that prints --bus does.
func TestConnectErrorHidesCredentials(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing answers there now
	_, err = Open(context.Background(), Config{Name: "leak", External: "nats://app:s3cretpw@" + addr})
	if err == nil {
		t.Fatal("a bus where nothing answers opened")
	}
	if strings.Contains(err.Error(), "s3cretpw") || !strings.Contains(err.Error(), addr) {
		t.Errorf("the error %q shows the password, or not the address", err)
	}
	// A URL that does not parse: nats.go's error quotes it whole.
	_, err = Open(context.Background(), Config{Name: "leak", External: "nats://app:s3cret pw@" + addr})
	if err == nil {
		t.Fatal("a bus URL that does not parse opened")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error %q shows the password", err)
	}
}

// A URL that does not parse is not quoted, nor is the part of it that
// url.Parse's error itself quotes, which can be the start of a password.
func TestWithoutURLQuotesNothingOfIt(t *testing.T) {
	raw := "nats://user:se/cret@host:4222"
	_, perr := url.Parse(raw)
	if perr == nil {
		t.Fatalf("%q parsed", raw)
	}
	if got := withoutURL(perr).Error(); strings.Contains(got, ":se") || strings.Contains(got, "cret") {
		t.Errorf("withoutURL(%v) = %q: quotes the password", perr, got)
	}
	other := errors.New("other")
	if got := withoutURL(other); got != other {
		t.Errorf("withoutURL changed an error that is not url.Parse's: %v", got)
	}
}
