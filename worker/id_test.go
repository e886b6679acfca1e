package worker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	id, err := loadID(dir, "")
	if err != nil || !idPattern.MatchString(id) {
		t.Fatalf("new id %q: %v", id, err)
	}
	again, err := loadID(dir, "")
	if err != nil || again != id {
		t.Fatalf("the id changed across starts: %q then %q (%v)", id, again, err)
	}
	if _, err := loadID(dir, "someone-else"); err == nil || !strings.Contains(err.Error(), "belongs to worker "+id) {
		t.Fatalf("a folder with an id accepted another: %v", err)
	}
	named := t.TempDir()
	if id, err := loadID(named, "w7"); err != nil || id != "w7" {
		t.Fatalf("named id: %q %v", id, err)
	}
	if _, err := loadID(t.TempDir(), "../bad"); err == nil {
		t.Fatal("an id that is not a worker id was accepted")
	}
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "worker-id"), []byte("not/an id\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadID(broken, ""); err == nil {
		t.Fatal("a damaged worker-id file was accepted")
	}
}
