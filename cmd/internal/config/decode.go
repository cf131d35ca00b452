package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The decoder walks yaml.Node trees by hand (no reflection into structs) so that every
// error carries the file, line and key path, unknown keys are caught with the list of
// valid ones, duplicate keys are errors, and several errors are reported at once.

type decoder struct {
	file  string
	errs  Errors
	warns []string
	// lines maps a key path to the line of its key, for checks made after decoding.
	lines map[string]int
	// badSecrets is set when a secret could not be read: the "no PSK for connection"
	// check is then skipped, as it would only repeat that error.
	badSecrets bool
	// badID holds the paths of local/remote sections whose id was wrong or missing (so
	// the PSK check does not repeat the error).
	badID map[string]bool
	// mergeDepth, merged and mergeFailed bound << merges (see maxMergeDepth).
	mergeDepth  int
	merged      int
	mergeFailed bool
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// errAt reports at the line recorded for path, or its nearest recorded parent.
func (d *decoder) errAt(path, format string, args ...any) {
	d.errorf(d.lineOf(path), path, format, args...)
}

func (d *decoder) lineOf(path string) int {
	for p := path; p != ""; {
		if l, ok := d.lines[p]; ok {
			return l
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

func (d *decoder) warnf(line int, path, format string, args ...any) {
	d.warns = append(d.warns, fmt.Sprintf("%s:%d: %s: %s", d.file, line, path, fmt.Sprintf(format, args...)))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolve follows aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// describe says what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case n == nil || isNull(n):
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// entry is one key/value pair of a mapping.
type entry struct {
	key  string
	line int
	val  *yaml.Node
}

// entries returns a mapping's pairs in order, after merging "<<" keys (explicit keys
// win), reporting duplicate keys and non-string keys. A null node is an empty mapping.
func (d *decoder) entries(n *yaml.Node, path string) ([]entry, bool) {
	n = resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "expected a mapping of keys, got %s", describe(n))
		return nil, false
	}
	var out []entry
	first := map[string]int{}
	var merged []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k.Line, path, "expected a key name, got %s", describe(k))
			continue
		}
		if k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0) {
			merged = append(merged, d.mergeSources(v, path)...)
			continue
		}
		if l, dup := first[k.Value]; dup {
			d.errorf(k.Line, join(path, k.Value), "duplicate key (first defined on line %d)", l)
			continue
		}
		first[k.Value] = k.Line
		out = append(out, entry{key: k.Value, line: k.Line, val: v})
	}
	for _, e := range merged {
		if _, ok := first[e.key]; !ok {
			first[e.key] = e.line
			out = append(out, e)
		}
	}
	return out, true
}

// maxMergeDepth bounds nested << merges; mergeBudget bounds the entries they copy.
// Together they stop self-referencing anchors and "billion laughs" files.
const (
	maxMergeDepth = 8
	mergeBudget   = 100000
)

func (d *decoder) mergeSources(v *yaml.Node, path string) []entry {
	if d.mergeFailed {
		return nil
	}
	d.mergeDepth++
	defer func() { d.mergeDepth-- }()
	if d.mergeDepth > maxMergeDepth {
		if !d.mergeFailed {
			d.errorf(v.Line, path, "<< merges nest more than %d deep (does an anchor merge itself?)", maxMergeDepth)
		}
		d.mergeFailed = true
		return nil
	}
	v = resolve(v)
	var srcs []*yaml.Node
	if v.Kind == yaml.SequenceNode {
		srcs = v.Content
	} else {
		srcs = []*yaml.Node{v}
	}
	var out []entry
	for _, s := range srcs {
		if resolve(s).Kind != yaml.MappingNode {
			d.errorf(s.Line, path, "<< merges a mapping, got %s", describe(s))
			continue
		}
		es, _ := d.entries(s, path)
		d.merged += len(es)
		if d.merged > mergeBudget {
			if !d.mergeFailed {
				d.errorf(v.Line, path, "<< merges expand to more than %d keys", mergeBudget)
			}
			d.mergeFailed = true
			return nil
		}
		out = append(out, es...)
	}
	return out
}

// field is how one known key of a section is decoded.
type field func(v *yaml.Node, path string)

// fields decodes a section: each key goes to its handler; unknown keys are errors that
// list the valid ones (and say so when the key is a swanctl key cygnet does not support).
func (d *decoder) fields(n *yaml.Node, path string, known map[string]field, unsupported map[string]string) {
	es, ok := d.entries(n, path)
	if !ok {
		return
	}
	for _, e := range es {
		p := join(path, e.key)
		d.lines[p] = e.line
		if f, ok := known[e.key]; ok {
			f(e.val, p)
			continue
		}
		if path == "" && strings.HasPrefix(e.key, "x-") {
			continue // top-level x-… keys hold anchors for << merges and are otherwise ignored
		}
		if why, ok := unsupported[e.key]; ok {
			d.errorf(e.line, p, "%s", why)
			continue
		}
		names := make([]string, 0, len(known))
		for k := range known {
			names = append(names, k)
		}
		sort.Strings(names)
		d.errorf(e.line, p, "unknown key (expected one of: %s)", strings.Join(names, ", "))
	}
}

// scalar returns a scalar's text, or reports "expected <what>".
func (d *decoder) scalar(v *yaml.Node, path, what string) (string, bool) {
	v = resolve(v)
	if v == nil || isNull(v) || v.Kind != yaml.ScalarNode {
		line := 0
		if v != nil {
			line = v.Line
		}
		if line == 0 {
			line = d.lineOf(path)
		}
		d.errorf(line, path, "expected %s, got %s", what, describe(v))
		return "", false
	}
	return v.Value, true
}

// item is one element of a list value.
type item struct {
	s    string
	line int
}

// list reads a YAML sequence of scalars, or a scalar with comma-separated elements as
// swanctl writes them ("10.0.0.0/24, 10.1.0.0/24").
func (d *decoder) list(v *yaml.Node, path, what string) ([]item, bool) {
	v = resolve(v)
	if v == nil || isNull(v) {
		d.errorf(d.lineOf(path), path, "expected %s (a list or comma-separated), got nothing", what)
		return nil, false
	}
	var out []item
	switch v.Kind {
	case yaml.ScalarNode:
		for _, s := range strings.Split(v.Value, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				d.errorf(v.Line, path, "expected %s, got an empty element in %q", what, v.Value)
				return nil, false
			}
			out = append(out, item{s: s, line: v.Line})
		}
	case yaml.SequenceNode:
		if len(v.Content) == 0 {
			d.errorf(v.Line, path, "expected %s, got an empty list", what)
			return nil, false
		}
		ok := true
		for _, e := range v.Content {
			e = resolve(e)
			if e.Kind != yaml.ScalarNode || isNull(e) {
				d.errorf(e.Line, path, "expected %s in the list, got %s", what, describe(e))
				ok = false
				continue
			}
			out = append(out, item{s: strings.TrimSpace(e.Value), line: e.Line})
		}
		if !ok {
			return nil, false
		}
	default:
		d.errorf(v.Line, path, "expected %s, got %s", what, describe(v))
		return nil, false
	}
	return out, true
}

// boolean reads yes/no/true/false (swanctl writes yes and no).
func (d *decoder) boolean(v *yaml.Node, path string, dst *bool) {
	s, ok := d.scalar(v, path, "yes or no")
	if !ok {
		return
	}
	switch strings.ToLower(s) {
	case "yes", "true", "on":
		*dst = true
	case "no", "false", "off":
		*dst = false
	default:
		d.errorf(resolve(v).Line, path, "expected yes or no, got %q", s)
	}
}

// choice reads one of the names in opts.
func (d *decoder) choice(v *yaml.Node, path string, opts []string) (int, bool) {
	expect := "one of " + strings.Join(opts, ", ")
	s, ok := d.scalar(v, path, expect)
	if !ok {
		return 0, false
	}
	for i, o := range opts {
		if s == o {
			return i, true
		}
	}
	d.errorf(resolve(v).Line, path, "expected %s, got %q", expect, s)
	return 0, false
}

func (d *decoder) uintRange(v *yaml.Node, path string, lo, hi uint64, dst func(uint64)) {
	expect := fmt.Sprintf("a whole number from %d to %d", lo, hi)
	s, ok := d.scalar(v, path, expect)
	if !ok {
		return
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < lo || n > hi {
		d.errorf(resolve(v).Line, path, "expected %s, got %q", expect, s)
		return
	}
	dst(n)
}

// with runs parse on a scalar and reports its error at the value's line.
func with[T any](d *decoder, v *yaml.Node, path, what string, parse func(string) (T, error), dst *T) bool {
	s, ok := d.scalar(v, path, what)
	if !ok {
		return false
	}
	x, err := parse(s)
	if err != nil {
		d.errorf(resolve(v).Line, path, "%v", err)
		return false
	}
	*dst = x
	return true
}

// eachOf runs parse on every list element and collects the results.
func eachOf[T any](d *decoder, v *yaml.Node, path, what string, parse func(string) (T, error)) ([]T, bool) {
	items, ok := d.list(v, path, what)
	if !ok {
		return nil, false
	}
	out := make([]T, 0, len(items))
	for _, it := range items {
		x, err := parse(it.s)
		if err != nil {
			d.errorf(it.line, path, "%v", err)
			ok = false
			continue
		}
		out = append(out, x)
	}
	return out, ok
}
