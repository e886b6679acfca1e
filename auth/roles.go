package auth

import (
	"fmt"
	"slices"
	"strings"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// Roles lists the roles, by their names (lower case, as the CLI takes them).
var Roles = map[string]cairnv1.Role{
	"admin":    cairnv1.Role_ROLE_ADMIN,
	"operator": cairnv1.Role_ROLE_OPERATOR,
	"writer":   cairnv1.Role_ROLE_WRITER,
	"reader":   cairnv1.Role_ROLE_READER,
	"worker":   cairnv1.Role_ROLE_WORKER,
}

// ParseRole reads a role's name ("operator") or its enum name
// ("ROLE_OPERATOR").
func ParseRole(s string) (cairnv1.Role, error) {
	if r, ok := Roles[strings.ToLower(s)]; ok {
		return r, nil
	}
	if v, ok := cairnv1.Role_value[strings.ToUpper(s)]; ok && v != 0 {
		return cairnv1.Role(v), nil
	}
	names := make([]string, 0, len(Roles))
	for n := range Roles {
		names = append(names, n)
	}
	slices.Sort(names)
	return 0, fmt.Errorf("unknown role %q: want one of %s", s, strings.Join(names, ", "))
}

// RoleName is a role's name as the CLI prints it ("operator").
func RoleName(r cairnv1.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

// Class is a set of roles allowed to make a kind of call.
type Class int

// The classes of calls. Admin is in every class.
const (
	// Open: no token needed (health, reflection). Never in rules: those
	// routes are simply not checked.
	Open Class = iota
	// Any authenticated caller (WhoAmI, /metrics).
	Any
	// Read: reads of the namespace, jobs, map, settings, journal and status.
	Read
	// WorkerRead: the reads a worker needs (the map, file records, a job,
	// the mounts, cached data), which readers may make too.
	WorkerRead
	// Write: writes of files (namespace and cached data).
	Write
	// WorkerWrite: writes of cached data that workers make to each other
	// too (a rebalance copy through the Write stream, deletes).
	WorkerWrite
	// Operate: jobs, maintenance, clear-stale, free, settings, replication,
	// the upload mapping, notes.
	Operate
	// Work: a worker process's own calls (registration, heartbeats, leases,
	// reports, worker-to-worker transfers, the token table).
	Work
	// Admin: tokens, raft membership and leadership, snapshots, profiles.
	Admin
)

var classRoles = map[Class][]cairnv1.Role{
	Any:         {cairnv1.Role_ROLE_ADMIN, cairnv1.Role_ROLE_OPERATOR, cairnv1.Role_ROLE_WRITER, cairnv1.Role_ROLE_READER, cairnv1.Role_ROLE_WORKER},
	Read:        {cairnv1.Role_ROLE_ADMIN, cairnv1.Role_ROLE_OPERATOR, cairnv1.Role_ROLE_WRITER, cairnv1.Role_ROLE_READER},
	WorkerRead:  {cairnv1.Role_ROLE_ADMIN, cairnv1.Role_ROLE_OPERATOR, cairnv1.Role_ROLE_WRITER, cairnv1.Role_ROLE_READER, cairnv1.Role_ROLE_WORKER},
	Write:       {cairnv1.Role_ROLE_ADMIN, cairnv1.Role_ROLE_OPERATOR, cairnv1.Role_ROLE_WRITER},
	WorkerWrite: {cairnv1.Role_ROLE_ADMIN, cairnv1.Role_ROLE_OPERATOR, cairnv1.Role_ROLE_WRITER, cairnv1.Role_ROLE_WORKER},
	Operate:     {cairnv1.Role_ROLE_ADMIN, cairnv1.Role_ROLE_OPERATOR},
	Work:        {cairnv1.Role_ROLE_ADMIN, cairnv1.Role_ROLE_WORKER},
	Admin:       {cairnv1.Role_ROLE_ADMIN},
}

// Allows reports whether a role may make a call of class c.
func (c Class) Allows(r cairnv1.Role) bool {
	return c == Open || slices.Contains(classRoles[c], r)
}

func (c Class) String() string {
	switch c {
	case Open:
		return "open"
	case Any:
		return "any token"
	case Read:
		return "read"
	case WorkerRead:
		return "read (workers too)"
	case Write:
		return "write"
	case WorkerWrite:
		return "write (workers too)"
	case Operate:
		return "operate"
	case Work:
		return "worker"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// RolesOf lists the names of the roles in class c, for messages.
func RolesOf(c Class) []string {
	var out []string
	for _, r := range classRoles[c] {
		out = append(out, RoleName(r))
	}
	return out
}
