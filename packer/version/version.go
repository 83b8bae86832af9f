// Package version holds the plugin's version, reported to Packer by `describe`.
package version

import "github.com/hashicorp/packer-plugin-sdk/version"

// Version is the plugin version; the plugin is built from this repository, not released on
// its own, so it stays at a development version.
var (
	Version           = "0.1.0"
	VersionPrerelease = "dev"
	PluginVersion     = version.InitializePluginVersion(Version, VersionPrerelease)
)
