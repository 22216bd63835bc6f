package web

import (
	"net"
	"slices"
	"testing"
)

// countConn records each Write it gets.
type countConn struct {
	net.Conn
	writes []string
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func TestCorkWriter(t *testing.T) {
	c := &countConn{}
	w := &corkWriter{conn: c}
	write := func(s string) {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	write("a")
	w.cork()
	write("b")
	write("c")
	if err := w.uncork(); err != nil {
		t.Fatal(err)
	}
	write("d")
	w.cork()
	if err := w.uncork(); err != nil { // nothing held: nothing written
		t.Fatal(err)
	}
	if want := []string{"a", "bc", "d"}; !slices.Equal(c.writes, want) {
		t.Errorf("socket writes %q, want %q: uncorked writes go through, held ones leave in one", c.writes, want)
	}
}
