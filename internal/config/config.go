// Package config reads the settings file of `switchboard serve`: a flat
// TOML file whose keys are the command's flag names (max-rooms = 16,
// store-timeout = "15s"), so that a setting has one name on the command
// line, in the environment and in the file.
//
// Load parses the file, rejects keys the caller does not know (with the
// line they are on and the nearest known key), tables and values that are
// not scalars or lists of scalars, and returns every setting as the text a
// flag.Value accepts, with its line. The caller applies the settings in
// its own order of precedence; this package neither knows the settings nor
// reads the environment.
package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Setting is one key of a file, as text a flag.Value accepts.
type Setting struct {
	// Key is the key as written, e.g. "max-rooms".
	Key string
	// Text is the value as flag text: strings as they are, numbers and
	// booleans formatted (a whole float with its digits: 2e6 is
	// "2000000"), lists joined with commas.
	Text string
	// Line is the 1-based line the key is on (0 when it was not found).
	Line int
}

// File is a loaded settings file.
type File struct {
	// Path is the file's path as given to Load.
	Path string
	// Settings are the file's keys in the order of their lines.
	Settings []Setting
}

// Lookup returns the setting for key and whether the file has it.
func (f *File) Lookup(key string) (Setting, bool) {
	if f == nil {
		return Setting{}, false
	}
	for _, s := range f.Settings {
		if s.Key == key {
			return s, true
		}
	}
	return Setting{}, false
}

// Where names a setting's place for an error message: "FILE:LINE: KEY".
func (f *File) Where(s Setting) string {
	if s.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", f.Path, s.Line, s.Key)
	}
	return fmt.Sprintf("%s: %s", f.Path, s.Key)
}

// Load reads the file at path. known lists the keys the file may set;
// every other key is an error. The errors name the file, the line and the
// key, and are joined so that one run reports them all.
func Load(path string, known []string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: reading the settings file: %w", err)
	}
	return Parse(path, data, known)
}

// Parse is Load on data already read; path only names the file in errors.
func Parse(path string, data []byte, known []string) (*File, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("config: %s:%d: %s", path, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("config: parsing %s: %w", path, err)
	}
	lines := keyLines(data)
	f := &File{Path: path}
	var errs []error
	for key, v := range raw {
		s := Setting{Key: key, Line: lines[key]}
		if !slices.Contains(known, key) {
			if table, ok := v.(map[string]any); ok {
				// A table or a dotted key (max.rooms = 3): name each
				// setting as written, so that the error shows the key
				// the file has, and its likely flat name.
				for _, path := range leaves(key, table) {
					msg := fmt.Sprintf("unknown key %q (the file is flat: no tables or dotted keys)", path)
					if near := nearest(path, known); near != "" {
						msg = fmt.Sprintf("unknown key %q (the file is flat: no tables or dotted keys; did you mean %q?)", path, near)
					}
					errs = append(errs, fmt.Errorf("%s: %s", f.where(s), msg))
				}
				continue
			}
			msg := fmt.Sprintf("unknown key %q", key)
			if near := nearest(key, known); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", near)
			}
			errs = append(errs, fmt.Errorf("%s: %s", f.where(s), msg))
			continue
		}
		text, err := asText(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Where(s), err))
			continue
		}
		s.Text = text
		f.Settings = append(f.Settings, s)
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	slices.SortFunc(f.Settings, func(a, b Setting) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return strings.Compare(a.Key, b.Key)
	})
	return f, nil
}

// leaves lists the dotted paths of a table's values ("max.rooms"), in
// order; an empty table is its own path.
func leaves(prefix string, table map[string]any) []string {
	if len(table) == 0 {
		return []string{prefix}
	}
	var out []string
	for k, v := range table {
		if sub, ok := v.(map[string]any); ok {
			out = append(out, leaves(prefix+"."+k, sub)...)
		} else {
			out = append(out, prefix+"."+k)
		}
	}
	slices.Sort(out)
	return out
}

// where is the place of a key for an error: "FILE:LINE".
func (f *File) where(s Setting) string {
	if s.Line > 0 {
		return fmt.Sprintf("%s:%d", f.Path, s.Line)
	}
	return f.Path
}

// asText turns a decoded TOML value into flag text.
func asText(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return floatText(v), nil
	case []any:
		parts := make([]string, len(v))
		for i, item := range v {
			if _, nested := item.([]any); nested {
				return "", errors.New("a list of lists is not a setting")
			}
			if _, table := item.(map[string]any); table {
				return "", errors.New("a list of tables is not a setting")
			}
			text, err := asText(item)
			if err != nil {
				return "", err
			}
			parts[i] = text
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		return "", errors.New("is a table; the file is flat: write the settings at the top level")
	case time.Time:
		return "", errors.New("a date is not a setting (write durations as strings: \"15s\")")
	default:
		return "", fmt.Errorf("unsupported value of type %T", v)
	}
}

// floatText is a TOML float as flag text in the file's terms: a whole
// one with its digits (2e6 and 2000000.0 are "2000000", which a setting
// of whole numbers takes), any other as Go writes it shortest ("2.5",
// "1e-07"). The exponent form is kept for whole numbers past 2^53, which
// a float64 does not hold exactly.
func floatText(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// keyPattern matches a top-level key at the start of a line: bare, or in
// quotes, followed by "=", or by "." in a dotted key (or a "[table]"
// header, named the same way).
var keyPattern = regexp.MustCompile(`^\s*(?:\[\s*)?(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_-]+))\s*(?:=|\]|\.)`)

// keyLines maps each key to the first line it appears on. TOML has no
// public positions for keys, and the file is flat, so a key is found where
// a line starts with it.
func keyLines(data []byte) map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // a byte order mark, as some editors write
		}
		m := keyPattern.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := m[1] + m[2] + m[3]
		if _, seen := out[key]; !seen {
			out[key] = n
		}
	}
	return out
}

// Nearest returns the known key closest to key by edit distance, when it
// is close enough to be a likely typo, and "" otherwise. The file's
// errors use it, and so may the callers' for the same names given
// elsewhere (environment variables).
func Nearest(key string, known []string) string {
	return nearest(key, known)
}

// nearest returns the known key closest to key by edit distance, when it
// is close enough to be a likely typo.
func nearest(key string, known []string) string {
	best, bestDist := "", len(key)/2+1
	for _, k := range known {
		if d := distance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, over bytes (keys
// are ASCII).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
