package fsm

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestKeyspace checks the store's key layout, as keys.go declares it:
//
//   - keyspace lists every []byte variable keys.go declares, under its
//     name and with its value (prefix... names a prefix, key... a fixed
//     key), and no other file of the package declares one;
//   - every entry is a one-letter namespace and '/': a prefix is just
//     that, a fixed key has a name after it;
//   - no entry equals or is a prefix of another, so a scan of a prefix
//     never meets another entry's keys, and a namespace that is a prefix
//     holds nothing else (a/ and c/ hold fixed keys only);
//   - doc.go's Keys section lists each entry (a fixed key as itself, a
//     prefix followed by a <placeholder>) and nothing that is not one.
func TestKeyspace(t *testing.T) {
	t.Run("declared", func(t *testing.T) {
		inTable := map[string][]byte{}
		for _, e := range keyspace {
			if _, dup := inTable[e.name]; dup {
				t.Errorf("keyspace lists %s twice", e.name)
			}
			inTable[e.name] = e.key
			if want := strings.HasPrefix(e.name, "prefix"); e.prefix != want || (!e.prefix && !strings.HasPrefix(e.name, "key")) {
				t.Errorf("keyspace: %s has prefix=%v; prefixes are named prefix..., fixed keys key...", e.name, e.prefix)
			}
		}
		files, err := filepath.Glob("*.go")
		if err != nil {
			t.Fatal(err)
		}
		declared := map[string]bool{}
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue
			}
			for name, lit := range byteVars(t, file) {
				if file != "keys.go" {
					t.Errorf("%s declares %s = []byte(%q): keys and prefixes are declared in keys.go", file, name, lit)
					continue
				}
				declared[name] = true
				key, ok := inTable[name]
				switch {
				case !ok:
					t.Errorf("keys.go declares %s = []byte(%q) but keyspace does not list it", name, lit)
				case string(key) != lit:
					t.Errorf("keyspace: %s is %q, keys.go declares %q", name, key, lit)
				}
			}
		}
		for _, e := range keyspace {
			if !declared[e.name] {
				t.Errorf("keyspace lists %s, which keys.go does not declare as []byte(\"...\")", e.name)
			}
		}
	})

	t.Run("distinct", func(t *testing.T) {
		for _, e := range keyspace {
			k := e.key
			if len(k) < 2 || k[0] < 'a' || k[0] > 'z' || k[1] != '/' {
				t.Errorf("%s %q does not start with a namespace letter and '/'", e.name, k)
			} else if e.prefix && len(k) != 2 {
				t.Errorf("prefix %s %q is not just a namespace letter and '/'", e.name, k)
			} else if !e.prefix && len(k) == 2 {
				t.Errorf("fixed key %s %q has no name after its namespace", e.name, k)
			}
		}
		for i, a := range keyspace {
			for j, b := range keyspace {
				switch {
				case i == j:
				case bytes.Equal(a.key, b.key):
					if i < j {
						t.Errorf("%s and %s are both %q", a.name, b.name, a.key)
					}
				case bytes.HasPrefix(b.key, a.key):
					t.Errorf("%s %q is a prefix of %s %q: their keys would mix", a.name, a.key, b.name, b.key)
				}
			}
		}
	})

	t.Run("documented", func(t *testing.T) {
		listed := docKeys(t)
		if len(listed) == 0 {
			t.Fatal("doc.go has no Keys section")
		}
		covers := func(e string, prefix bool, pattern string) bool {
			if !prefix {
				return pattern == e
			}
			return strings.HasPrefix(pattern, e) && strings.HasPrefix(pattern[len(e):], "<")
		}
		for _, e := range keyspace {
			found := false
			for _, p := range listed {
				found = found || covers(string(e.key), e.prefix, p)
			}
			if !found {
				if e.prefix {
					t.Errorf("doc.go's Keys section does not list prefix %s (%s<...>)", e.name, e.key)
				} else {
					t.Errorf("doc.go's Keys section does not list key %s (%s)", e.name, e.key)
				}
			}
		}
		for _, p := range listed {
			found := false
			for _, e := range keyspace {
				found = found || covers(string(e.key), e.prefix, p)
			}
			if !found {
				t.Errorf("doc.go's Keys section lists %s, which is no key or prefix in keyspace", p)
			}
		}
	})
}

// byteVars returns the package-level variables of a file declared as
// []byte("literal"), with their literal.
func byteVars(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, v := range vs.Values {
				call, ok := v.(*ast.CallExpr)
				if !ok || len(call.Args) != 1 {
					continue
				}
				at, ok := call.Fun.(*ast.ArrayType)
				if !ok || at.Len != nil {
					continue
				}
				if elt, ok := at.Elt.(*ast.Ident); !ok || elt.Name != "byte" {
					continue
				}
				lit, ok := call.Args[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				s, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[vs.Names[i].Name] = s
			}
		}
	}
	return out
}

// docKeys returns the first word of each line of doc.go's Keys section:
// the keys and key patterns it lists.
func docKeys(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case line == "// # Keys":
			in = true
		case strings.HasPrefix(line, "// # "):
			in = false
		case in && strings.HasPrefix(line, "//\t"):
			if f := strings.Fields(strings.TrimPrefix(line, "//\t")); len(f) > 0 {
				out = append(out, f[0])
			}
		}
	}
	return out
}
