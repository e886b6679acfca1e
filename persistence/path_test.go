package persistence

import (
	"errors"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	t.Parallel()
	long := "/" + strings.Repeat("a", MaxNameBytes+1)
	cases := []struct {
		in, want string
	}{
		{"/", "/"},
		{"/a", "/a"},
		{"/a/b/c.txt", "/a/b/c.txt"},
		{"/a/", "/a"},
		{"/.hidden/x", "/.hidden/x"},
		{"/a..b/c", "/a..b/c"},
		{"", ""},
		{"a/b", ""},
		{"./a", ""},
		{"/a/../b", ""},
		{"/..", ""},
		{"/a/./b", ""},
		{"//a", ""},
		{"/a//b", ""},
		{"/a//", ""},
		{"/a\x00b", ""},
		{"/a\nb", ""},
		{"/a\tb", ""},
		{"/a\x7fb", ""},
		{"/a\u0085b", ""},
		{"/a\xffb", ""},
		{"/d\xc3(", ""},
		{"/ünïcødé/файл", "/ünïcødé/файл"},
		{strings.Repeat("/a", 10000), ""},
		{long, ""},
		{"/" + strings.Repeat("a/", MaxPathBytes/2), ""},
	}
	for _, c := range cases {
		got, err := CleanPath(c.in)
		if c.want == "" {
			if err == nil || !errors.Is(err, ErrInvalidPath) {
				t.Errorf("CleanPath(%q) = %q, %v; want ErrInvalidPath", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestUnderAndParent(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p, prefix string
		want      bool
	}{
		{"/a/b", "/a", true}, {"/a", "/a", true}, {"/ab", "/a", false}, {"/a", "/", true}, {"/b", "/a", false},
	} {
		if got := Under(c.p, c.prefix); got != c.want {
			t.Errorf("Under(%q, %q) = %v", c.p, c.prefix, got)
		}
	}
	for p, want := range map[string]string{"/a": "/", "/a/b": "/a", "/": "/"} {
		if got := Parent(p); got != want {
			t.Errorf("Parent(%q) = %q, want %q", p, got, want)
		}
	}
}

// FuzzCleanPath: whatever CleanPath accepts is canonical (cleaning it again
// changes nothing) and has no segment that could climb or alias.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/a/../b", "a", "//", "/a/", "/./", "/\x00", "/..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := CleanPath(s)
		if err != nil {
			return
		}
		again, err := CleanPath(c)
		if err != nil || again != c {
			t.Fatalf("CleanPath(%q) = %q, which cleans to %q, %v", s, c, again, err)
		}
		if c != "/" && (strings.HasSuffix(c, "/") || strings.Contains(c, "//")) {
			t.Fatalf("CleanPath(%q) = %q is not canonical", s, c)
		}
		for _, seg := range strings.Split(c, "/")[1:] {
			if seg == ".." || seg == "." {
				t.Fatalf("CleanPath(%q) = %q keeps %q", s, c, seg)
			}
		}
	})
}
