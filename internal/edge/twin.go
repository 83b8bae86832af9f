package edge

import (
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/shtetl/zmanim-ops/internal/config"
)

// TwinOptions returns the options that serve env's edge description on the local twin: the
// API origin is the gateway (twin.ports.gateway) and the static origin is the static bucket
// on the twin's S3 server, path-style, read with the twin's S3 credentials and signed for
// env.Region (the S3 server must be started with that region: versitygw checks it).
// The API origin carries the origin-verify header (config.Env.OriginCustomHeaders), which the
// gateway passes through to the box. The caller adds Logger, Latency and the rest.
func TwinOptions(env *config.Env, s3AccessKey, s3SecretKey, originVerifySecret string) Options {
	p := env.Twin.Ports
	api := config.Origin{ID: config.OriginIDAPI, Kind: config.OriginAPI}
	return Options{
		Config: env.Edge,
		Origins: map[string]OriginEndpoint{
			config.OriginIDAPI: {URL: env.URL(p.Gateway), Headers: env.OriginCustomHeaders(api, originVerifySecret)},
			config.OriginIDStatic: {
				URL: env.URL(p.S3) + "/" + env.Buckets.Static,
				S3:  &S3Auth{Region: env.Region, Credentials: credentials.NewStaticCredentialsProvider(s3AccessKey, s3SecretKey, "")},
			},
		},
		DistributionID: TwinDistributionID,
	}
}
