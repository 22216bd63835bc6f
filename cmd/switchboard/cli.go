package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/switchboard/switchboard/internal/config"
)

// Exit codes, as operators' tools use them.
const (
	exitOK      = 0 // done, or help asked for and printed
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line or its environment is wrong
)

// usageError is a mistake in how a command was called (an unknown flag,
// a bad value, an unexpected argument): exit 2, with a hint to -h.
type usageError struct {
	cmd string // the command whose help to point at: "serve", "bench storm"; "" for the top level
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usageError for cmd.
func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, err: fmt.Errorf(format, args...)}
}

// exitCode maps a command's error to the process's exit code.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	default:
		return exitFailure
	}
}

// report prints err once, with a one-line hint for usage errors, and
// returns the exit code.
func report(stderr io.Writer, err error) int {
	code := exitCode(err)
	if code == exitOK {
		return code
	}
	fmt.Fprintln(stderr, "switchboard:", termSafeLines(err.Error())) // it may quote a node
	var ue *usageError
	if errors.As(err, &ue) {
		if ue.cmd == "" {
			fmt.Fprintln(stderr, "Run 'switchboard help' for the commands.")
		} else {
			fmt.Fprintf(stderr, "Run 'switchboard %s -h' for its flags.\n", ue.cmd)
		}
	}
	return code
}

// envPrefix is the prefix of a command's environment twins: serve's
// --capacity is SWITCHBOARD_SERVE_CAPACITY. Subcommands share their
// command's prefix (bench storm's --clients is SWITCHBOARD_BENCH_CLIENTS).
func envPrefix(command string) string {
	first, _, _ := strings.Cut(command, " ")
	return "SWITCHBOARD_" + strings.ToUpper(first) + "_"
}

// envName is the environment twin of a flag of command.
func envName(command, flagName string) string {
	return envPrefix(command) + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// cmdline is one command's flags and where their values come from. The
// order of precedence, highest first: the command line, the environment
// twin (SWITCHBOARD_<COMMAND>_<FLAG>), the config file (serve only), the
// default.
type cmdline struct {
	fs       *flag.FlagSet
	name     string // "serve", "bench storm"
	synopsis string // what follows "switchboard NAME" in the usage line
	about    string // a paragraph under the usage line
	stdout   io.Writer
	stderr   io.Writer
	// file is set for a command that also reads a config file (serve).
	file bool
	// emptyGiven names the flags whose environment twin set to the empty
	// string is taken as given, empty, rather than as unset: those for
	// which empty would widen what the command makes unasked (token's
	// --rooms, empty meaning any room), so that the command refuses it.
	emptyGiven []string
	// from says where each set flag's value came from: "--capacity",
	// "SWITCHBOARD_SERVE_CAPACITY", "FILE:LINE: capacity".
	from map[string]string
}

// newCmdline returns an empty command line for the command name.
func newCmdline(name, synopsis, about string, stdout, stderr io.Writer) *cmdline {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Parse must print nothing: help goes to stdout and errors once to
	// stderr, both from here.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &cmdline{fs: fs, name: name, synopsis: synopsis, about: about, stdout: stdout, stderr: stderr, from: map[string]string{}}
}

// parse reads args: flags anywhere before a "--", the other words as
// positional arguments, which it returns. Then it fills the flags not on
// the command line from their environment twins. -h and --help print the
// help to stdout and return flag.ErrHelp.
func (c *cmdline) parse(args []string) ([]string, error) {
	var pos []string
	rest := args
	for {
		if err := c.fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.help(c.stdout)
				return nil, flag.ErrHelp
			}
			return nil, usagef(c.name, "%s: %s", c.name, flagDashes.ReplaceAllString(err.Error(), "$1--"))
		}
		left := c.fs.Args()
		if len(left) == 0 {
			break
		}
		if used := len(rest) - len(left); used > 0 && rest[used-1] == "--" {
			pos = append(pos, left...)
			break
		}
		pos = append(pos, left[0])
		rest = left[1:]
	}
	c.fs.Visit(func(f *flag.Flag) { c.from[f.Name] = "--" + f.Name })
	return pos, c.applyEnv()
}

// flagDashes finds the one dash the flag package's parse errors put
// before a flag's name ("flag provided but not defined: -nope"); parse
// makes it the two that -h and the docs write.
var flagDashes = regexp.MustCompile(`^(flag provided but not defined: |flag needs an argument: |invalid value "(?:[^"\\]|\\.)*" for flag |invalid boolean value "(?:[^"\\]|\\.)*" for )-`)

// noArgs rejects positional arguments for a command that takes none.
func (c *cmdline) noArgs(pos []string) error {
	if len(pos) == 0 {
		return nil
	}
	what := "argument"
	if len(pos) > 1 {
		what = "arguments"
	}
	return usagef(c.name, "%s: unexpected %s %q (%s takes flags only)", c.name, what, strings.Join(pos, " "), c.name)
}

// isAnotherCommandsTwin reports whether name, a global twin of old, is
// also a command's own twin (serve's --token-key's old twin,
// SWITCHBOARD_TOKEN_KEY, is token's --key): set for that command, it is
// no mistake to warn about.
func isAnotherCommandsTwin(name string) bool {
	for _, c := range commands() {
		if strings.HasPrefix(name, envPrefix(c.name)) {
			return true
		}
	}
	return false
}

// applyEnv sets every flag not given on the command line from its
// environment twin, and warns about the global twins of old
// (SWITCHBOARD_<FLAG>), which are ignored.
func (c *cmdline) applyEnv() error {
	var errs []error
	c.fs.VisitAll(func(f *flag.Flag) {
		key := envName(c.name, f.Name)
		if old := "SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")); old != key && !isAnotherCommandsTwin(old) {
			if _, ok := os.LookupEnv(old); ok {
				fmt.Fprintf(c.stderr, "switchboard: warning: %s is ignored: environment twins are per command; use %s\n", old, key)
			}
		}
		if _, set := c.from[f.Name]; set {
			return
		}
		v, ok := os.LookupEnv(key)
		if !ok {
			return
		}
		if v == "" && !slices.Contains(c.emptyGiven, f.Name) {
			// Counted as unset: a compose file's ${UNSET} gives an empty
			// variable, and taken it would turn off what the config
			// file sets (a token key, an admin token) without a word.
			sources := "the command line or its default"
			if c.file {
				sources = "the command line, the config file or its default"
			}
			fmt.Fprintf(c.stderr, "switchboard: warning: %s is empty: ignored, as if unset (--%s comes from %s)\n", key, f.Name, sources)
			return
		}
		if err := c.fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: invalid value for --%s: %w", key, v, f.Name, err))
			return
		}
		c.from[f.Name] = key
	})
	if err := errors.Join(errs...); err != nil {
		return &usageError{cmd: c.name, err: fmt.Errorf("%s: %w", c.name, err)}
	}
	return nil
}

// applyFile sets every flag still at its default from the file. Its
// errors are failures, not usage errors: the command line was right.
func (c *cmdline) applyFile(f *config.File) error {
	if f == nil {
		return nil
	}
	var errs []error
	for _, s := range f.Settings {
		if _, set := c.from[s.Key]; set {
			continue
		}
		if err := c.fs.Set(s.Key, s.Text); err != nil {
			errs = append(errs, fmt.Errorf("%s = %q: %w", f.Where(s), s.Text, err))
			continue
		}
		c.from[s.Key] = f.Where(s)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// names lists the command's flag names.
func (c *cmdline) names() []string {
	var out []string
	c.fs.VisitAll(func(f *flag.Flag) { out = append(out, f.Name) })
	return out
}

// help writes the command's usage: the synopsis, the paragraph, and every
// flag with its default and environment twin.
func (c *cmdline) help(w io.Writer) {
	fmt.Fprintf(w, "usage: switchboard %s %s\n", c.name, c.synopsis)
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", c.about)
	}
	fmt.Fprintf(w, "\nflags (each also set by the environment, %s<FLAG>):\n", envPrefix(c.name))
	c.fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		if t, ok := f.Value.(interface{ Type() string }); ok {
			typ = t.Type()
		}
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintln(w, line)
		def := ""
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" {
			def = fmt.Sprintf("default %s; ", f.DefValue)
		}
		fmt.Fprintf(w, "        %s (%senv %s)\n", usage, def, envName(c.name, f.Name))
	})
}
