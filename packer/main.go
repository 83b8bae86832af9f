// Command packer-plugin-zops is the zmanim-ops Packer plugin. Packer 1.9 loads it as a bare
// executable named packer-plugin-zops from PACKER_PLUGIN_PATH; the builders registered here
// are then called zops-local and zops-ec2 in templates (box.pkr.hcl).
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"

	"github.com/shtetl/zmanim-ops/packer/builder/ec2"
	"github.com/shtetl/zmanim-ops/packer/builder/local"
	"github.com/shtetl/zmanim-ops/packer/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	pps := plugin.NewSet()
	pps.RegisterBuilder("local", new(local.Builder))
	pps.RegisterBuilder("ec2", new(ec2.Builder))
	pps.SetVersion(version.PluginVersion)
	return pps.Run()
}
