// Package deptest checks that dependencies point inward: the pure core
// packages import no network, operating-system or engine code, and read
// no clock (time arrives as an argument).
package deptest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// core lists the pure packages, relative to this one.
var core = []string{"directory", "wire", "jsonlen", "pick", "failover", "rtt", "room", "sim", "stats", "drain"}

// forbidden imports: exactly these, or anything below a path ending in /.
var forbidden = []string{
	"net", "net/", "os", "os/", "io/fs", "syscall",
	"github.com/nats-io/", "github.com/miekg/dns", "github.com/coder/websocket",
	"github.com/switchboard/switchboard/internal/", "github.com/switchboard/switchboard/client",
}

// clock lists the time functions that read or wait on the wall clock.
var clock = map[string]bool{"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "AfterFunc": true, "NewTimer": true, "NewTicker": true, "Tick": true}

func TestCoreIsPure(t *testing.T) {
	for _, pkg := range core {
		files, err := filepath.Glob(filepath.Join("..", "..", pkg, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files for %s: %v", pkg, err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range forbidden {
					if path == bad || (strings.HasSuffix(bad, "/") && strings.HasPrefix(path, bad)) {
						t.Errorf("%s imports %s: the core must stay free of I/O", name, path)
					}
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == "time" && clock[sel.Sel.Name] {
						t.Errorf("%s uses time.%s: take now as an argument instead", name, sel.Sel.Name)
					}
				}
				return true
			})
		}
	}
}
