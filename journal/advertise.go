package journal

import (
	"fmt"
	"net"
	"strconv"
)

// advertiseAddr is the raft address a node gives its peers. An IP address
// must be one they can dial (not 0.0.0.0 or ::). A host name is kept as it
// is and resolved by each dial, so a node whose address changes from one
// start to the next (a Kubernetes pod behind a stable DNS name) stays
// reachable under its name: the raft configuration holds the name.
func advertiseAddr(s string) (net.Addr, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return nil, fmt.Errorf("raft advertise address %q: %w", s, err)
	}
	if host != "" && net.ParseIP(host) == nil {
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("raft advertise address %q: the port must be a number from 1 to 65535", s)
		}
		return namedAddr(s), nil
	}
	adv, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		return nil, fmt.Errorf("raft advertise address %q: %w", s, err)
	}
	if adv.IP == nil || adv.IP.IsUnspecified() {
		return nil, fmt.Errorf("raft advertise address %q is not one peers can dial: give a host address", s)
	}
	return adv, nil
}

// namedAddr is a TCP address by host name.
type namedAddr string

func (a namedAddr) Network() string { return "tcp" }
func (a namedAddr) String() string  { return string(a) }
