package gateway

import "github.com/shtetl/zmanim-ops/internal/config"

// TwinOptions returns the options that serve env's API description on the local twin in front
// of the box's API socket (twin.ports.box). The origin-verify header is not added here: the
// edge adds it (config.Env.OriginCustomHeaders) and the gateway passes it through. The caller
// adds Logger and AccessLog.
func TwinOptions(env *config.Env) Options {
	return Options{
		Config: env.API,
		BoxURL: env.URL(env.Twin.Ports.Box),
	}
}
