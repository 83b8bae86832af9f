package gateway

import "github.com/shtetl/zmanim-ops/internal/config"

// TwinOptions returns the options that serve env's API description on the local twin in front
// of the box's API socket (twin.ports.box), adding the origin-verify secret to every
// integration request. The caller adds Logger and AccessLog.
func TwinOptions(env *config.Env, originVerifySecret string) Options {
	return Options{
		Config:             env.API,
		BoxURL:             env.URL(env.Twin.Ports.Box),
		OriginVerifySecret: originVerifySecret,
	}
}
