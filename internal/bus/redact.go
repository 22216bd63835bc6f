package bus

import (
	"errors"
	"net/url"
	"strings"
)

// hiddenValue replaces a whole value RedactURLs cannot take apart safely.
const hiddenValue = "(hidden: it holds credentials)"

// RedactURLs hides the user information of each URL in a comma-separated
// value: nats://USER:PASSWORD@HOST becomes nats://USER:xxxxx@HOST, and
// nats://TOKEN@HOST (a NATS token in the user's place) nats://xxxxx@HOST.
// When an item holding "@" has no scheme (nats.go takes HOST:PORT and
// USER:PASSWORD@HOST:PORT alone) or does not parse, the whole value is
// hidden: a password with a comma or a space in it spans items, and no
// item of such a value can be shown without showing some of it.
func RedactURLs(value string) string {
	items := strings.Split(value, ",")
	for i, item := range items {
		item = strings.TrimSpace(item)
		if !strings.Contains(item, "@") {
			continue
		}
		if !strings.Contains(item, "://") {
			return hiddenValue
		}
		u, err := url.Parse(item)
		switch {
		case err != nil || u.User == nil:
			return hiddenValue
		case hasPassword(u.User):
			items[i] = u.Redacted()
		default:
			u.User = url.User("xxxxx")
			items[i] = u.String()
		}
	}
	return strings.Join(items, ",")
}

func hasPassword(u *url.Userinfo) bool {
	_, ok := u.Password()
	return ok
}

// withoutURL is err with the URL a *url.Error names taken out: nats.go
// returns url.Parse's errors as they are, and those quote the URL, its
// password included. The parse error itself may quote part of it too
// (`invalid port ":se" after host` for nats://user:se/cret@host), so
// none of it is kept. Other errors are returned unchanged.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New("the URL does not parse (not quoted: it may hold a password)")
	}
	return err
}
