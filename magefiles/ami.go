package main

import "github.com/magefile/mage/mg"

// Ami builds and manages the box's machine image from one recipe (packer/recipe): ami:local builds
// a Debian root here with the project's Packer plugin and proves it by booting it under systemd;
// ami builds the Amazon Linux 2023 image on EC2; ami:list and ami:prune manage published images.
type Ami mg.Namespace
