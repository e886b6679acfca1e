package master

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestDecodeCacheRequest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, method, query, body string
		want                      cacheRequest
		wantPaths                 []string
		code                      int
		err                       string
	}{
		{"clear-stale", http.MethodPost, "", `{"op":"clear-stale"}`, cacheRequest{Op: "clear-stale"}, nil, 0, ""},
		{"clear-stale forced", http.MethodPost, "", `{"op":"clear-stale","force":true}`, cacheRequest{Op: "clear-stale", Force: true}, nil, 0, ""},
		{"stop clear-stale", http.MethodDelete, "", `{"op":"clear-stale"}`, cacheRequest{Op: "clear-stale"}, nil, 0, ""},
		{"free a folder", http.MethodPost, "", `{"op":"free","path":"/datasets/old"}`, cacheRequest{Op: "free", Path: "/datasets/old"}, nil, 0, ""},
		{"free by index", http.MethodPost, "?op=free", "# old\n/a/1\n\n/b/2\n", cacheRequest{Op: "free"}, []string{"/a/1", "/b/2"}, 0, ""},
		{"stop free", http.MethodDelete, "", `{"op":"free"}`, cacheRequest{Op: "free"}, nil, 0, ""},
		{"free without a path", http.MethodPost, "", `{"op":"free"}`, cacheRequest{}, nil, http.StatusBadRequest, `free needs "path"`},
		{"free with force", http.MethodPost, "", `{"op":"free","path":"/","force":true}`, cacheRequest{}, nil, http.StatusBadRequest, `no "force"`},
		{"clear-stale with a path", http.MethodPost, "", `{"op":"clear-stale","path":"/x"}`, cacheRequest{}, nil, http.StatusBadRequest, `no "path"`},
		{"unknown field", http.MethodPost, "", `{"op":"free","prefix":"/x"}`, cacheRequest{}, nil, http.StatusBadRequest, "unknown field"},
		{"unknown op", http.MethodPost, "", `{"op":"evict"}`, cacheRequest{}, nil, http.StatusBadRequest, `unknown op "evict"`},
		{"not JSON", http.MethodPost, "", `op=free`, cacheRequest{}, nil, http.StatusBadRequest, "must be JSON"},
		{"index with a relative path", http.MethodPost, "?op=free", "/a\nb\n", cacheRequest{}, nil, http.StatusBadRequest, `line 2: "b"`},
		{"empty index", http.MethodPost, "?op=free", "\n", cacheRequest{}, nil, http.StatusBadRequest, "lists no paths"},
		{"index of another op", http.MethodPost, "?op=clear-stale", "/a\n", cacheRequest{}, nil, http.StatusBadRequest, "POST ?op=free"},
		{"index on DELETE", http.MethodDelete, "?op=free", "/a\n", cacheRequest{}, nil, http.StatusBadRequest, "POST ?op=free"},
		{"index too large", http.MethodPost, "?op=free", strings.Repeat("/a\n", cacheIndexLimit/3+1), cacheRequest{}, nil, http.StatusRequestEntityTooLarge, "over"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeCacheRequest(httptest.NewRequest(c.method, CachePath+c.query, strings.NewReader(c.body)))
			if c.err != "" {
				var ae *cacheAPIError
				if !errors.As(err, &ae) || ae.code != c.code || !strings.Contains(ae.msg, c.err) {
					t.Fatalf("got %+v %v, want HTTP %d and an error containing %q", got, err, c.code, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Op != c.want.Op || got.Force != c.want.Force || got.Path != c.want.Path || !slices.Equal(got.paths, c.wantPaths) {
				t.Fatalf("got %+v, want %+v with paths %q", got, c.want, c.wantPaths)
			}
		})
	}
}
