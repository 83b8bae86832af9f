// Package fakeec2 stands in, for a box booted here (internal/nsboot), for what EC2 and the
// account give a real instance: an instance metadata service speaking IMDSv2, a path from the
// box's network namespace to the AWS endpoints (the twin's S3, SSM and JWKS on the host's
// loopback; Gateway), a blank EBS volume (a loop device; Volume), and the box's SSM
// parameters and buckets on the twin (OpenAccount). The box proof (ami:local) and the
// recovery drills (bench:recovery) boot boxes the same way.
package fakeec2

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Forward relays TCP connections from listen (the namespace's gateway address) to target (a
// twin component on the host's loopback), until stop is called.
func Forward(listen, target string) (stop func(), err error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("forward %s -> %s: %w", listen, target, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go relay(c, target)
		}
	}()
	return func() { ln.Close() }, nil
}

func relay(c net.Conn, target string) {
	defer c.Close()
	t, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer t.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(t, c); closeWrite(t); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, t); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// IMDS is what the fake metadata service tells the box.
type IMDS struct {
	Region     string
	InstanceID string
	ImageID    string
	PrivateIP  string
	// Role names the instance role whose (static, test-only) credentials are served; the twin's
	// kumo accepts any key.
	Role string
}

// Serve starts the fake IMDSv2 on listen: a PUT for the token, the token required on every
// GET, with what the box reads (instance id, region, the identity document the SDK's GetRegion
// reads, and the role's credentials). It returns the address it listens on.
func (m IMDS) Serve(listen string) (addr string, stop func(), err error) {
	const token = "zops-fake-imds-token"
	if m.Role == "" {
		m.Role = "zmanim-box"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		ttl := r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds")
		if ttl == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", ttl)
		_, _ = io.WriteString(w, token)
	})
	get := func(path string, body func() string) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-aws-ec2-metadata-token") != token {
				http.Error(w, "IMDSv2 token required", http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, body())
		})
	}
	get("/latest/meta-data/instance-id", func() string { return m.InstanceID })
	get("/latest/meta-data/placement/region", func() string { return m.Region })
	// The SDK's GetRegion reads the identity document, not placement/region.
	get("/latest/dynamic/instance-identity/document", func() string {
		b, _ := json.Marshal(map[string]any{"region": m.Region, "instanceId": m.InstanceID, "availabilityZone": m.Region + "a",
			"accountId": "000000000000", "architecture": "arm64", "imageId": m.ImageID, "instanceType": "m7g.medium",
			"pendingTime": time.Now().UTC().Format(time.RFC3339), "privateIp": m.PrivateIP, "version": "2017-09-30"})
		return string(b)
	})
	get("/latest/meta-data/iam/security-credentials/", func() string { return m.Role })
	get("/latest/meta-data/iam/security-credentials/"+m.Role, func() string {
		b, _ := json.Marshal(map[string]string{"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIAFAKEIMDS", "SecretAccessKey": "fake-imds-secret",
			"Token": "fake-imds-session", "Expiration": time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339), "LastUpdated": time.Now().UTC().Format(time.RFC3339)})
		return string(b)
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", nil, fmt.Errorf("fake IMDS on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { srv.Close() }, nil
}
