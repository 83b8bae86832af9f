# The box image, built from one recipe by two builders of the project's own plugin
# (packer-plugin-zops, loaded from PACKER_PLUGIN_PATH by Packer 1.9):
#   zops-local.box  a Debian root directory here (go tool mage ami:local)
#   zops-ec2.box    an Amazon Linux 2023 arm64 AMI on AWS (go tool mage ami)
# Both upload the staging directory (files_dir: binaries, units, prepared by the box code)
# and the recipe into /tmp/zops, then run /tmp/zops/recipe/run.sh as root with ZOPS_DISTRO
# set. See packer/README.md.

packer {
  required_version = ">= 1.9.0, < 1.10.0"
}

variable "files_dir" {
  type        = string
  description = "Staging directory uploaded to /tmp/zops/files: binaries, units, API release."
}

variable "recipe_dir" {
  type        = string
  default     = ""
  description = "Recipe directory uploaded to /tmp/zops/recipe (default: recipe/ next to this template)."
}

variable "recipe_env" {
  type        = map(string)
  default     = {}
  description = "Extra environment for run.sh (NAME = value)."
}

variable "output_dir" {
  type        = string
  default     = ""
  description = "zops-local: directory the built root is written to (default ../.state/box/root)."
}

variable "force" {
  type        = bool
  default     = false
  description = "zops-local: replace an existing output_dir."
}

variable "debian_include" {
  type        = list(string)
  default     = ["systemd", "systemd-sysv", "dbus"]
  description = "zops-local: packages debootstrap installs into the cached base (the cache key)."
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "source_ami_parameter" {
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
  description = "zops-ec2: SSM public parameter naming the base image."
}

variable "instance_type" {
  type    = string
  default = "t4g.small"
}

variable "environment" {
  type        = string
  default     = "prod"
  description = "zops-ec2: environment name; everything built is tagged zmanim:ami-build=<environment> (the ami role of infra/ acts only on that)."
}

variable "instance_profile" {
  type        = string
  default     = "zmanim-prod-ami-builder"
  description = "zops-ec2: instance profile of the build instance (infra/ creates zmanim-<env>-ami-builder)."
}

variable "subnet_id" {
  type    = string
  default = ""
}

variable "staging_bucket" {
  type        = string
  default     = ""
  description = "zops-ec2: S3 bucket for uploads and full command output (deleted after the build): the releases bucket."
}

variable "staging_prefix" {
  type        = string
  default     = "ami-staging/"
  description = "zops-ec2: key prefix in staging_bucket (the ami role of infra/ may use only ami-staging/)."
}

variable "image_name" {
  type    = string
  default = "zmanim-box"
}

variable "image_parameter" {
  type        = string
  default     = "/zmanim/prod/ami-id"
  description = "zops-ec2: SSM parameter the new image id is published to (DataType aws:ec2:image)."
}

variable "keep_images" {
  type    = number
  default = 3
}

variable "version" {
  type    = string
  default = "dev"
}

variable "commit" {
  type    = string
  default = "unknown"
}

variable "recipe_hash" {
  type    = string
  default = "unknown"
}

locals {
  recipe_dir = var.recipe_dir != "" ? var.recipe_dir : "${path.root}/recipe"
  output_dir = var.output_dir != "" ? var.output_dir : "${path.root}/../.state/box/root"
  image_tags = {
    "zops:version"     = var.version
    "zops:commit"      = var.commit
    "zops:recipe-hash" = var.recipe_hash
  }
}

source "zops-local" "box" {
  output_dir = local.output_dir
  force      = var.force
  suite      = "bookworm"
  mirror     = "http://deb.debian.org/debian"
  variant    = "minbase"
  include    = var.debian_include
}

source "zops-ec2" "box" {
  region               = var.region
  source_ami_parameter = var.source_ami_parameter
  instance_type        = var.instance_type
  instance_profile     = var.instance_profile
  subnet_id            = var.subnet_id
  staging_bucket       = var.staging_bucket
  staging_prefix       = var.staging_prefix
  image_name           = var.image_name
  image_tags           = local.image_tags
  build_tags           = { "zmanim:ami-build" = var.environment }
  image_parameter      = var.image_parameter
  keep_images          = var.keep_images
}

build {
  sources = ["source.zops-local.box", "source.zops-ec2.box"]

  provisioner "shell" {
    inline = ["rm -rf /tmp/zops", "mkdir -p /tmp/zops/files /tmp/zops/recipe"]
  }

  # Trailing slashes: the directories' contents, not the directories, land in the destination.
  provisioner "file" {
    source      = "${var.files_dir}/"
    destination = "/tmp/zops/files"
  }

  provisioner "file" {
    source      = "${local.recipe_dir}/"
    destination = "/tmp/zops/recipe"
  }

  provisioner "shell" {
    inline = ["bash /tmp/zops/recipe/run.sh"]
    environment_vars = concat(
      [
        "ZOPS_DISTRO=${source.type == "zops-local" ? "debian" : "al2023"}",
        "ZOPS_FILES=/tmp/zops/files",
        "ZOPS_VERSION=${var.version}",
        "ZOPS_COMMIT=${var.commit}",
      ],
      [for k, v in var.recipe_env : "${k}=${v}"]
    )
  }

  provisioner "shell" {
    inline = ["rm -rf /tmp/zops"]
  }
}
