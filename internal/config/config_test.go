package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var known = []string{"service", "max-rooms", "join", "store-timeout", "chunk-rate", "check"}

func TestParse(t *testing.T) {
	in := `# a comment
service = "chat.example"

max-rooms = 16
"store-timeout" = "15s"
join = ["10.0.0.1:7072", "10.0.0.2:7072"]
chunk-rate = 50.5
check = true
`
	f, err := Parse("f.toml", []byte(in), known)
	if err != nil {
		t.Fatal(err)
	}
	want := []Setting{
		{Key: "service", Text: "chat.example", Line: 2},
		{Key: "max-rooms", Text: "16", Line: 4},
		{Key: "store-timeout", Text: "15s", Line: 5},
		{Key: "join", Text: "10.0.0.1:7072,10.0.0.2:7072", Line: 6},
		{Key: "chunk-rate", Text: "50.5", Line: 7},
		{Key: "check", Text: "true", Line: 8},
	}
	if diff := cmp.Diff(f.Settings, want); diff != "" {
		t.Errorf("settings (-got +want):\n%s", diff)
	}
	if s, ok := f.Lookup("max-rooms"); !ok || f.Where(s) != "f.toml:4: max-rooms" {
		t.Errorf("Lookup(max-rooms) = %+v, %v; Where %q", s, ok, f.Where(s))
	}
	if _, ok := f.Lookup("join2"); ok {
		t.Error("Lookup found a key the file does not have")
	}
}

// A float is flag text in the file's terms: a whole one with its digits,
// which a whole-number setting takes, never "2e+06", which the file did
// not say and the setting refused as "not a whole number".
func TestParseFloatText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2e6", "2000000"},
		{"2000000.0", "2000000"},
		{"1_000.0", "1000"},
		{"-3.0", "-3"},
		{"0.0", "0"},
		{"50.5", "50.5"},
		{"2.5e-1", "0.25"},
		{"1e-7", "1e-07"},
		{"1e300", "1e+300"}, // past 2^53: no float64 holds it to the unit
		{"inf", "+Inf"},
	}
	for _, tt := range tests {
		f, err := Parse("f.toml", []byte("chunk-rate = "+tt.in+"\n"), known)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got := f.Settings[0].Text; got != tt.want {
			t.Errorf("chunk-rate = %s: text %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Every error names the file, the line and the key, and says what is wrong.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"unknown key with a suggestion", "service = \"x\"\nmax_rooms = 3\n", []string{`f.toml:2: unknown key "max_rooms" (did you mean "max-rooms"?)`}},
		{"unknown key far from any", "frobnicate = 1\n", []string{`f.toml:1: unknown key "frobnicate"`}},
		{"every unknown key at once", "a = 1\nb = 2\n", []string{`f.toml:1: unknown key "a"`, `f.toml:2: unknown key "b"`}},
		{"table", "[limits]\nmax-rooms = 3\n", []string{`f.toml:1: unknown key "limits.max-rooms" (the file is flat: no tables or dotted keys; did you mean "max-rooms"?)`}},
		{"dotted key", "service = \"x\"\nmax.rooms = 3\n", []string{`f.toml:2: unknown key "max.rooms" (the file is flat: no tables or dotted keys; did you mean "max-rooms"?)`}},
		{"empty table", "[limits]\n", []string{`f.toml:1: unknown key "limits" (the file is flat: no tables or dotted keys)`}},
		{"known key as table", "[service]\nname = 1\n", []string{"f.toml:1: service: is a table"}},
		{"syntax", "service = \"x\"\nmax-rooms = = 3\n", []string{"f.toml:2:"}},
		{"duplicate key", "service = \"x\"\nservice = \"y\"\n", []string{"f.toml:2:"}},
		{"date", "service = 1979-05-27\n", []string{"f.toml:1: service: a date is not a setting"}},
		{"list of lists", "join = [[1]]\n", []string{"f.toml:1: join: a list of lists"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(tt.in), known)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// A file that begins with a byte order mark, as some editors write, still
// gives its first key's line.
func TestParseByteOrderMark(t *testing.T) {
	f, err := Parse("f.toml", []byte("\ufeffmax-rooms = 3\r\nservice = \"x\"\r\n"), known)
	if err != nil {
		t.Fatal(err)
	}
	want := []Setting{{Key: "max-rooms", Text: "3", Line: 1}, {Key: "service", Text: "x", Line: 2}}
	if diff := cmp.Diff(f.Settings, want); diff != "" {
		t.Errorf("settings (-got +want):\n%s", diff)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.toml")
	_, err := Load(path, known)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
}
