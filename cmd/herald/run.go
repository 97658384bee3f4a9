package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"
)

// usageError marks a command-line mistake (unknown command, bad flag or
// value); the process exits 2 for it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// command is one herald sub-command.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// subs and order are a command group's sub-commands (endpoints,
	// messages, …), for help; runGroup dispatches them.
	subs  map[string]subcommand
	order []string
}

// commands is filled by each command's file in init, keeping run free of a
// central list that every change has to touch.
var commands = map[string]command{}

// run executes herald with args (without the program name). Every error is
// printed to stderr as one line prefixed "herald: " before it is returned.
// Help asked for with -h or --help goes to stderr, as Go's tools do; asked
// for with 'herald help …', to stdout, so that it can be paged or grepped.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdout, stderr)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = errors.New("interrupted") // Ctrl-C during a call: not "context canceled"
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "herald: %v\n", err)
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printUsage(stderr)
		return usagef("no command given (see 'herald help')")
	}
	switch args[0] {
	case "-h", "--help", "-help":
		printUsage(stderr)
		return flag.ErrHelp
	case "help":
		if len(args) == 1 || args[1] == "help" {
			printUsage(stdout)
			return flag.ErrHelp
		}
		if _, ok := commands[args[1]]; !ok {
			return unknownCommand("", args[1])
		}
		// The command prints its own help, here to stdout: everything
		// after the command's name is its path to a sub-command.
		help := append(append([]string{}, args[1:]...), "--help")
		return dispatch(ctx, help, stdout, stdout)
	case "--version", "-version":
		if _, ok := commands["version"]; ok {
			return commands["version"].run(ctx, nil, stdout, stderr)
		}
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return unknownCommand("", args[0])
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

// unknownCommand is the one-line error for a command name that does not
// exist, in group ("" for the top level), with a suggestion when one is
// close.
func unknownCommand(group, name string) error {
	var names []string
	help := "herald help"
	if group == "" {
		for n := range commands {
			names = append(names, n)
		}
	} else {
		for n := range commands[group].subs {
			names = append(names, n)
		}
		help += " " + group
	}
	prefix := ""
	if group != "" {
		prefix = group + ": "
	}
	if s := closest(name, names); s != "" {
		return usagef("%sunknown command %q (did you mean %q? see '%s')", prefix, name, s, help)
	}
	return usagef("%sunknown command %q (see '%s')", prefix, name, help)
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: herald <command> [flags]")
	fmt.Fprintln(w)
	writeParagraphs(w, "Herald is a durable webhook delivery engine: 'herald serve' runs a node; "+
		"the other commands call its HTTP API, or sign and verify webhooks.")
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	width := 0
	for name := range commands {
		names = append(names, name)
		width = max(width, len(name))
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, name, commands[name].summary)
	}
	fmt.Fprintln(w)
	writeParagraphs(w, "Run 'herald help <command>' (or 'herald <command> --help') for its flags, "+
		"environment variables and examples. Client commands call "+defaultServer+" unless given --server "+
		"or HERALD_SERVER, and print JSON unless given --output table (or HERALD_OUTPUT=table) where a table is offered.")
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its help (writeHelp: the synopsis, flags with two dashes, the
// environment variables they read and examples) to stderr. synopsis is
// what follows "herald NAME" on the usage line, then optionally a blank
// line and a description.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("herald "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { writeHelp(stderr, fs, name, synopsis) }
	return fs
}

// parseFlags parses args into fs. A bad flag or value becomes one usage
// line naming the flag with two dashes and the command's help; -h or
// --help prints the help.
func parseFlags(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard) // the flag package would print the error and the whole usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case err != nil:
		return usagef("%s (see '%s --help')", flagErrorText(fs, err), fs.Name())
	}
	return nil
}

// flagErrorText rewrites the flag package's error, which names flags with
// one dash, to name them as the help does: "flag needs an argument:
// --data", "unknown flag --bogus (did you mean --data?)".
func flagErrorText(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if s := closest(name, names); s != "" {
			return fmt.Sprintf("unknown flag --%s (did you mean --%s?)", name, s)
		}
		return "unknown flag --" + name
	}
	msg = oneDashFlag.ReplaceAllString(msg, "$1--$2")
	// "invalid value "x" for flag --limit: parse error" says what is wanted.
	if m := parseErrorFlag.FindStringSubmatch(msg); m != nil {
		if g, ok := fs.Lookup(m[1]).Value.(flag.Getter); ok {
			want := ""
			switch g.Get().(type) {
			case int, int64, uint, uint64:
				want = "a whole number"
			case float64:
				want = "a number"
			case time.Duration:
				want = "a duration such as 30s, 5m or 1h"
			case bool:
				want = "true or false"
			}
			if want != "" {
				return strings.TrimSuffix(msg, "parse error") + "want " + want
			}
		}
	}
	return msg
}

// parseErrorFlag finds the flag of the flag package's "parse error".
var parseErrorFlag = regexp.MustCompile(`for (?:flag )?--([A-Za-z0-9._-]+): parse error$`)

// oneDashFlag finds the flag names in the flag package's errors: "…
// argument: -data", "… for flag -limit: …", "… for -verbose: …".
var oneDashFlag = regexp.MustCompile(`(: |for flag |for )-([A-Za-z0-9][A-Za-z0-9._-]*)`)

// closest returns the candidate a mistyped name most likely meant: one
// that starts with it, or is within two edits of it; "" if none is.
func closest(name string, candidates []string) string {
	sort.Strings(candidates)
	best, bestDist := "", 3
	for _, c := range candidates {
		if len(name) >= 3 && strings.HasPrefix(c, name) {
			return c
		}
		if d := editDistance(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist > 1 && len(name) < 4 { // two edits of a short name is anything
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
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

// stringList is a repeatable string flag (--uri U --uri V).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
