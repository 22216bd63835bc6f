package bus

import (
	"net/url"
	"strings"
)

// RedactURLs hides the user information of each URL in a comma-separated
// value: nats://USER:PASSWORD@HOST becomes nats://USER:xxxxx@HOST, and
// nats://TOKEN@HOST (a NATS token in the user's place) nats://xxxxx@HOST.
// An item that does not parse but holds "@" after "://" is hidden whole.
func RedactURLs(value string) string {
	items := strings.Split(value, ",")
	for i, item := range items {
		scheme, rest, ok := strings.Cut(item, "://")
		if !ok || !strings.Contains(rest, "@") {
			continue
		}
		u, err := url.Parse(item)
		switch {
		case err != nil || u.User == nil:
			items[i] = scheme + "://(hidden: it holds credentials)"
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
