package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// docker speaks to the Docker Engine API over its unix socket. The faults
// whose timing is measured (kill, pause, network disconnect) go this way
// rather than through the docker CLI, so that a figure does not include a
// process start.
type docker struct {
	hc *http.Client
}

func newDocker() (*docker, error) {
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		if !strings.HasPrefix(h, "unix://") {
			return nil, fmt.Errorf("DOCKER_HOST=%s: the drills speak to a local engine over a unix socket", h)
		}
		sock = strings.TrimPrefix(h, "unix://")
	}
	if _, err := os.Stat(sock); err != nil {
		return nil, fmt.Errorf("the Docker engine's socket: %w", err)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 8,
	}
	return &docker{hc: &http.Client{Transport: tr}}, nil
}

// call sends one API request; body (if not nil) is sent as JSON and the
// answer decoded into out (if not nil).
func (d *docker) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := "http://docker" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return fmt.Errorf("docker %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotModified {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("docker %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

func (d *docker) post(ctx context.Context, path string, query url.Values, body any) error {
	return d.call(ctx, http.MethodPost, path, query, body, nil)
}

// kill sends signal (e.g. KILL) to a container's main process.
func (d *docker) kill(ctx context.Context, name, signal string) error {
	return d.post(ctx, "/containers/"+name+"/kill", url.Values{"signal": {signal}}, nil)
}

func (d *docker) start(ctx context.Context, name string) error {
	return d.post(ctx, "/containers/"+name+"/start", nil, nil)
}

// restart stops a container (SIGTERM, then SIGKILL after grace) and starts it.
func (d *docker) restart(ctx context.Context, name string, grace time.Duration) error {
	return d.post(ctx, "/containers/"+name+"/restart", url.Values{"t": {fmt.Sprint(int(grace.Seconds()))}}, nil)
}

func (d *docker) pause(ctx context.Context, name string) error {
	return d.post(ctx, "/containers/"+name+"/pause", nil, nil)
}

func (d *docker) unpause(ctx context.Context, name string) error {
	return d.post(ctx, "/containers/"+name+"/unpause", nil, nil)
}

// disconnect takes a container off a network: it loses its address there,
// and every connection through it stops answering.
func (d *docker) disconnect(ctx context.Context, network, name string) error {
	return d.post(ctx, "/networks/"+network+"/disconnect", nil, map[string]any{"Container": name, "Force": true})
}

// connect puts a container back on a network with the address and the
// aliases it had (compose's static addresses and service names).
func (d *docker) connect(ctx context.Context, network, name, ip string, aliases []string) error {
	return d.post(ctx, "/networks/"+network+"/connect", nil, map[string]any{
		"Container": name,
		"EndpointConfig": map[string]any{
			"IPAMConfig": map[string]any{"IPv4Address": ip},
			"Aliases":    aliases,
		},
	})
}

// killer looks up a container's main process and returns what kills it at
// once: kill(2) on its host pid when this process may (root on the
// engine's host), else the API, which returns only once the container is
// torn down (hundreds of milliseconds later); direct says which it was.
// The lookup is an API call of its own (up to hundreds of milliseconds on a
// busy host), made before, so that a fault timed from the kill's start is
// not timed from the lookup's: notes the old leader acknowledged during the
// lookup would pass for a new leader's (a "failover" of 44ms).
func (d *docker) killer(ctx context.Context, name string) (func() (direct bool, err error), error) {
	ci, err := d.inspect(ctx, name)
	if err != nil {
		return nil, err
	}
	return func() (bool, error) {
		if ci.State.Pid > 0 && syscall.Kill(ci.State.Pid, syscall.SIGKILL) == nil {
			return true, nil
		}
		return false, d.kill(ctx, name, "KILL")
	}, nil
}

// containerInfo is the part of GET /containers/{name}/json the drills read.
type containerInfo struct {
	RestartCount int
	State        struct {
		Status     string
		Running    bool
		Paused     bool
		Pid        int
		ExitCode   int
		StartedAt  time.Time
		FinishedAt time.Time
	}
}

func (d *docker) inspect(ctx context.Context, name string) (*containerInfo, error) {
	var ci containerInfo
	if err := d.call(ctx, http.MethodGet, "/containers/"+name+"/json", nil, nil, &ci); err != nil {
		return nil, err
	}
	return &ci, nil
}

// archive streams a folder of a container (running or not) as a tar.
func (d *docker) archive(ctx context.Context, name, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/containers/"+name+"/archive?"+url.Values{"path": {path}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return nil, os.ErrNotExist
		}
		return nil, fmt.Errorf("docker archive %s:%s: %s: %s", name, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp.Body, nil
}

// volumePath is where a named volume's files are on the engine's host, when
// this process can read them there (root on that host), else "".
func (d *docker) volumePath(ctx context.Context, name string) string {
	var v struct{ Mountpoint string }
	if err := d.call(ctx, http.MethodGet, "/volumes/"+name, nil, nil, &v); err != nil || v.Mountpoint == "" {
		return ""
	}
	if _, err := os.ReadDir(v.Mountpoint); err != nil {
		return ""
	}
	return v.Mountpoint
}

// projectFilter selects what docker-compose made for project (by its label).
func projectFilter(project string) url.Values {
	f, _ := json.Marshal(map[string][]string{"label": {"com.docker.compose.project=" + project}})
	return url.Values{"filters": {string(f)}}
}

// projectContainers names the containers of a compose project, running or not.
func (d *docker) projectContainers(ctx context.Context, project string) ([]string, error) {
	var cs []struct{ Names []string }
	q := projectFilter(project)
	q.Set("all", "1")
	if err := d.call(ctx, http.MethodGet, "/containers/json", q, nil, &cs); err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cs {
		out = append(out, strings.Join(c.Names, ","))
	}
	return out, nil
}

// removeProjectVolumes removes every volume of a compose project.
func (d *docker) removeProjectVolumes(ctx context.Context, project string) error {
	var vs struct{ Volumes []struct{ Name string } }
	if err := d.call(ctx, http.MethodGet, "/volumes", projectFilter(project), nil, &vs); err != nil {
		return err
	}
	for _, v := range vs.Volumes {
		if err := d.call(ctx, http.MethodDelete, "/volumes/"+v.Name, nil, nil, nil); err != nil {
			return err
		}
	}
	return nil
}
