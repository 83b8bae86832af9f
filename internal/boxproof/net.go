package boxproof

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// forward relays TCP connections from listen (the namespace's gateway address) to target (a
// twin component on the host's loopback), until stop is called.
func forward(listen, target string) (stop func(), err error) {
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
			go func() {
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
			}()
		}
	}()
	return func() { ln.Close() }, nil
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// serveIMDS is a fake EC2 instance metadata service speaking IMDSv2 (a PUT for the token, the
// token required on every GET), with what the box reads: instance id, region, and the
// instance role's credentials (static test keys; kumo accepts any).
func serveIMDS(listen, region, instanceID string) (addr string, stop func(), err error) {
	const token = "zops-box-proof-imds-token"
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
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
	get("/latest/meta-data/instance-id", func() string { return instanceID })
	get("/latest/meta-data/placement/region", func() string { return region })
	// The SDK's GetRegion reads the identity document.
	get("/latest/dynamic/instance-identity/document", func() string {
		b, _ := json.Marshal(map[string]any{"region": region, "instanceId": instanceID, "availabilityZone": region + "a",
			"accountId": "000000000000", "architecture": "arm64", "imageId": "ami-0b0xproof", "instanceType": "m7g.medium",
			"pendingTime": time.Now().UTC().Format(time.RFC3339), "privateIp": "10.77.62.2", "version": "2017-09-30"})
		return string(b)
	})
	get("/latest/meta-data/iam/security-credentials/", func() string { return "zmanim-box" })
	get("/latest/meta-data/iam/security-credentials/zmanim-box", func() string {
		b, _ := json.Marshal(map[string]string{"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIABOXPROOF", "SecretAccessKey": "box-proof-secret",
			"Token": "box-proof-session", "Expiration": time.Now().Add(6 * time.Hour).UTC().Format(time.RFC3339), "LastUpdated": time.Now().UTC().Format(time.RFC3339)})
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
