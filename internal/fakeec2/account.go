package fakeec2

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/shtetl/zmanim-ops/internal/awsx"
	"github.com/shtetl/zmanim-ops/internal/boxspec"
	"github.com/shtetl/zmanim-ops/internal/config"
	"github.com/shtetl/zmanim-ops/internal/nsboot"
	"github.com/shtetl/zmanim-ops/internal/twinstate"
)

// RandHex returns n random bytes in hex.
func RandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Account is the twin standing in for a local box's AWS account during one run: clients on the
// twin, the run's id, and the box's SSM parameters under /zmanim/<kind>/<ID>.
type Account struct {
	Clients *awsx.Clients
	Secrets twinstate.Secrets
	ID      string // the run: UTC time and a random suffix
	Prefix  string // the box's SSM parameter prefix
	Origin  string // the origin-verify secret put there
}

// OpenAccount creates the buckets on the twin if missing and puts the box's three parameters
// (origin-verify secret, API configuration with the JWKS reached through hostAddr, restic
// password) under a new prefix; cleanup deletes the parameters.
func OpenAccount(ctx context.Context, env *config.Env, kind, hostAddr string, buckets ...string) (*Account, func(), error) {
	a := &Account{}
	var err error
	if a.Secrets, err = twinstate.Dir(env.Twin.StateDir).ReadSecrets(); err != nil {
		return nil, nil, err
	}
	if a.Clients, err = awsx.NewTwin(ctx, env, awsx.TwinEndpoints(env), a.Secrets.S3AccessKey, a.Secrets.S3SecretKey); err != nil {
		return nil, nil, err
	}
	a.ID = time.Now().UTC().Format("20060102t150405") + "-" + RandHex(3)
	a.Prefix = "/zmanim/" + kind + "/" + a.ID
	for _, b := range buckets {
		if _, err := a.Clients.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)}); err != nil {
			if _, err := a.Clients.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
				return nil, nil, fmt.Errorf("create bucket %s on the twin: %w", b, err)
			}
		}
	}
	a.Origin = RandHex(16)
	jwt := env.API.Authorizers[config.AuthorizerJWT]
	cfg, _ := json.Marshal(map[string]any{
		// The issuer stays the twin's; the box fetches the JWKS through the forward.
		boxspec.ConfigOriginHeader: env.API.OriginVerifyHeader, boxspec.ConfigJWKSURL: strings.Replace(jwt.JWKS(), env.Twin.Host, hostAddr, 1),
		boxspec.ConfigJWTIssuer: jwt.Issuer, boxspec.ConfigJWTAudience: jwt.Audience[0],
	})
	params := []struct {
		name, value string
		typ         ssmtypes.ParameterType
	}{
		{boxspec.ParamOriginVerify, a.Origin, ssmtypes.ParameterTypeSecureString},
		{boxspec.ParamConfig, string(cfg), ssmtypes.ParameterTypeString},
		{boxspec.ParamResticPass, RandHex(16), ssmtypes.ParameterTypeSecureString},
	}
	cleanup := func() {
		for _, pr := range params {
			_, _ = a.Clients.SSM.DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String(a.Prefix + "/" + pr.name)})
		}
	}
	for _, pr := range params {
		if err := a.PutParam(ctx, pr.name, pr.value, pr.typ); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	return a, cleanup, nil
}

// PutParam puts (or overwrites) the box parameter name under the run's prefix.
func (a *Account) PutParam(ctx context.Context, name, value string, typ ssmtypes.ParameterType) error {
	_, err := a.Clients.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(a.Prefix + "/" + name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", a.Prefix, name, err)
	}
	return nil
}

// Volume makes a blank 2 GiB sparse file at img on a loop device: a new EBS volume. detach
// frees the device and removes the file.
func Volume(ctx context.Context, img string) (loop string, detach func(), err error) {
	_ = os.Remove(img)
	f, err := os.Create(img)
	if err != nil {
		return "", nil, err
	}
	err = f.Truncate(2 << 30)
	f.Close()
	if err != nil {
		os.Remove(img)
		return "", nil, err
	}
	out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		os.Remove(img)
		return "", nil, fmt.Errorf("losetup: %w: %s", err, out)
	}
	loop = strings.TrimSpace(string(out))
	return loop, func() {
		_ = exec.Command("losetup", "-d", loop).Run()
		_ = os.Remove(img)
	}, nil
}

// Gateway brings up the box's network namespace n and, on its gateway address (n.HostAddr),
// the forwards to the twin's S3, SSM/CloudWatch and JWKS ports and an IMDSv2 on imdsPort:
// the path a real instance has to AWS. stop undoes it all.
func Gateway(ctx context.Context, env *config.Env, n *nsboot.Net, imdsPort int, md IMDS) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if err := n.Up(ctx); err != nil {
		return nil, err
	}
	stops = append(stops, func() { n.Down(context.Background()) })
	tw := env.Twin
	for _, port := range []int{tw.Ports.S3, tw.Ports.AWS, tw.Ports.JWT} {
		s, err := Forward(net.JoinHostPort(n.HostAddr, strconv.Itoa(port)), net.JoinHostPort(tw.Host, strconv.Itoa(port)))
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, s)
	}
	if md.Region == "" {
		md.Region = env.Region
	}
	if md.PrivateIP == "" {
		md.PrivateIP = n.PeerAddr
	}
	_, s, err := md.Serve(net.JoinHostPort(n.HostAddr, strconv.Itoa(imdsPort)))
	if err != nil {
		stop()
		return nil, err
	}
	stops = append(stops, s)
	return stop, nil
}
