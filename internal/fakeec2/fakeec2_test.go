package fakeec2

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// The fake IMDS speaks v2 as the SDK uses it (the same client first boot uses): token, then
// region and the role's credentials; a GET without the token is refused.
func TestFakeIMDS(t *testing.T) {
	addr, stop, err := IMDS{Region: "eu-west-1", InstanceID: "i-1"}.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/latest/meta-data/instance-id")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET without a token: %d, want 401", resp.StatusCode)
	}
	ctx := context.Background()
	c := imds.New(imds.Options{Endpoint: "http://" + addr})
	r, err := c.GetRegion(ctx, &imds.GetRegionInput{})
	if err != nil || r.Region != "eu-west-1" {
		t.Fatalf("region %+v %v", r, err)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("eu-west-1"), awsconfig.WithEC2IMDSEndpoint("http://"+addr),
		awsconfig.WithSharedConfigFiles([]string{}), awsconfig.WithSharedCredentialsFiles([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = imds.NewFromConfig(cfg) }).Retrieve(ctx)
	if err != nil || creds.AccessKeyID == "" || creds.SessionToken == "" {
		t.Fatalf("role credentials %+v %v", creds, err)
	}
}

// Forward relays both directions, including a half-close, and stops listening when stopped.
func TestForward(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := free.Addr().String()
	free.Close()
	stop, err := Forward(listen, echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("ping"))
	_ = c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "ping" {
		t.Fatalf("relayed %q, %v; want ping", got, err)
	}
	stop()
	if c, err := net.Dial("tcp", listen); err == nil {
		c.Close()
		t.Fatal("still listening after stop")
	}
}
