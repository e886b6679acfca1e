package main

import "github.com/cairnhq/cairn/master"

// joinSelf turns --join of this master's own --api-advertise address into
// --bootstrap. The pods of a Kubernetes StatefulSet share one command line,
// and an image without a shell cannot pick flags by pod: every pod is told
// to join the first (…-0), so the first is told to join itself, and it
// starts the cluster instead. Bootstrap only acts on an empty data folder,
// so the first pod's restarts are plain restarts.
func joinSelf(cfg *master.Config) bool {
	if cfg.Join == "" || cfg.Join != cfg.APIAdvertise {
		return false
	}
	cfg.Join, cfg.Bootstrap = "", true
	return true
}
