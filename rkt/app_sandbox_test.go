package main

import "testing"

func TestParseSandboxPort(t *testing.T) {
	ep, err := parseSandboxPort("http:tcp:8080:127.0.0.1:18080")
	if err != nil {
		t.Fatal(err)
	}
	if ep.Name != "http" || ep.HostPort != 18080 || ep.HostIP.String() != "127.0.0.1" || ep.PodPort == nil ||
		ep.PodPort.Port != 8080 || ep.PodPort.Protocol != "tcp" {
		t.Errorf("parsed %+v (pod port %+v)", ep, ep.PodPort)
	}
	if ep, err := parseSandboxPort("dns:udp:53:5353"); err != nil || ep.HostIP != nil || ep.PodPort.Protocol != "udp" {
		t.Errorf("without host IP: %+v, %v", ep, err)
	}
	for _, bad := range []string{"http:8080", "http:sctp:80:80", "http:tcp:0:80", "http:tcp:80:nope", "http:tcp:80:1.2.3:80", "Bad_Name:tcp:80:80"} {
		if _, err := parseSandboxPort(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
