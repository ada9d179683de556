package mds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// DefaultSocket is where rkt run looks for the service, as rkt did.
const DefaultSocket = "/run/rkt/metadata-svc.sock"

// DefaultPort is the TCP port apps reach the service on.
const DefaultPort = 18112

// ErrUnreachable means no metadata service answered on the socket.
var ErrUnreachable = errors.New("metadata service is not running")

// Client talks to a service's registration socket.
type Client struct {
	Socket string
	http   *http.Client
}

// NewClient makes a client for the service listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &Client{Socket: socket, http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://mds"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s (start it with `rkt metadata-service`): %v", ErrUnreachable, c.Socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("metadata service: %s", strings.TrimSpace(string(msg)))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// Register registers a pod; apps of the pod can then reach the service
// with the registration's token.
func (c *Client) Register(ctx context.Context, reg *Registration) error {
	if err := reg.Validate(); err != nil {
		return err
	}
	return c.do(ctx, http.MethodPut, "/pods/"+reg.UUID, reg, nil)
}

// Unregister forgets a pod.
func (c *Client) Unregister(ctx context.Context, uuid string) error {
	return c.do(ctx, http.MethodDelete, "/pods/"+uuid, nil, nil)
}

// BindAddresses ties a registered pod to its own addresses: from then
// on the service answers the pod's token only for requests coming from
// one of them. Pods on the host network have no addresses of their own
// and stay bound by the token alone.
func (c *Client) BindAddresses(ctx context.Context, uuid string, ips []string) error {
	return c.do(ctx, http.MethodPut, "/pods/"+uuid+"/ips", ips, nil)
}

// Info asks the service for its TCP port.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var i Info
	err := c.do(ctx, http.MethodGet, "/info", nil, &i)
	return i, err
}

// NewToken makes a pod's secret: 256 random bits, hex-encoded.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := randRead(b); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", b), nil
}

// URL is the AC_METADATA_URL an app gets: the token is the first path
// element, as the appc spec suggests.
func URL(hostIP string, port int, token string) string {
	return fmt.Sprintf("http://%s/%s", net.JoinHostPort(hostIP, fmt.Sprint(port)), token)
}
