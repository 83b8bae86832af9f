package boxproof

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/firstboot"
)

// The instance file the proof writes is one first boot accepts (as the CDK user data's is).
func TestInstanceFileReadByFirstBoot(t *testing.T) {
	env, err := config.LoadWith(config.Options{Env: "local"})
	if err != nil {
		t.Fatal(err)
	}
	p := &proof{o: Options{Env: env}, prefix: "/zmanim/boxproof/x", loop: "/dev/loop7"}
	f := filepath.Join(t.TempDir(), "instance.env")
	os.WriteFile(f, []byte(p.instanceFile()), 0o644)
	kv, err := firstboot.ReadInstanceFile(f)
	if err != nil {
		t.Fatal(err)
	}
	in, err := firstboot.InputsFrom(kv)
	if err != nil || in.Device != "/dev/loop7" || in.SSMPrefix != "/zmanim/boxproof/x" {
		t.Fatalf("%+v %v", in, err)
	}
}

// The fake IMDS speaks v2 as the SDK uses it (the same client first boot uses): token, then
// region and the role's credentials; a GET without the token is refused.
func TestFakeIMDS(t *testing.T) {
	addr, stop, err := serveIMDS("127.0.0.1:0", "eu-west-1", "i-1")
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
