// Package promtext reads a node's /metrics: the values of unlabelled
// samples in the Prometheus text format, for the commands, benches and
// test clusters that watch nodes from outside.
package promtext

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Values returns the values of the named unlabelled samples in r (a
// labelled sample's name holds its labels, so it never matches). A name
// r does not hold is absent from the map; a named sample whose value
// does not parse is an error.
func Values(r io.Reader, names ...string) (map[string]float64, error) {
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		value, _, _ := strings.Cut(strings.TrimSpace(rest), " ") // a timestamp may follow
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("promtext: %s: %w", name, err)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("promtext: reading: %w", err)
	}
	return out, nil
}
