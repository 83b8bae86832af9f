# shellcheck shell=bash
# The ONLY place where Debian (the local builder) and Amazon Linux 2023 (production, ec2
# builder) differ. Everything else in the recipe uses these variables and functions.
#
# PostgreSQL and PostGIS:
#   debian  PostgreSQL 15 + PostGIS 3.3 from Debian bookworm (the local stand-in: production is 16;
#           the toolkit's code is version-agnostic).
#   al2023  PostgreSQL 16 + PostGIS 3.4 from the PostgreSQL project's own repository (PGDG) for
#           EL9 aarch64, because Amazon Linux 2023 packages no PostGIS at all (amazon-linux-2023
#           issue 730). PGDG installs under /usr/pgsql-16 (server postgresql16-server, unit
#           postgresql-16); AL2023's own postgresql16-server (/usr/bin, unit postgresql,
#           /var/lib/pgsql/data) is NOT installed and must never be mixed in: the box runs its
#           own unit zmanim-postgres with the programs linked at /opt/zmanim/pgbin. PostGIS's
#           libraries (geos, proj, gdal) come from PGDG's EL9 common repository, a few of their
#           dependencies from EPEL 9. This path runs only on EC2 (the ec2 builder); a dnf
#           resolution failure fails the image build with dnf's own message.
# Redis 7: debian redis-server 7.0; al2023 valkey (7.2+, the Redis 7 protocol; AL2023 has only
# redis6 and valkey), linked at /opt/zmanim/bin/redis-server.
# Logs: the journal on both. The CloudWatch agent (al2023 only, package amazon-cloudwatch-agent)
# tails the file zmanim-journal-export writes from the journal.

# DIST_PACKAGES and DIST_MASK are read by the scripts that source this file.
# shellcheck disable=SC2034
ZOPS_DISTRO="${ZOPS_DISTRO:-}"
case "$ZOPS_DISTRO" in
debian)
	PG_MAJOR=15
	DIST_PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
	DIST_REDIS_SERVER=/usr/bin/redis-server
	DIST_PACKAGES=(
		"postgresql-$PG_MAJOR" "postgresql-$PG_MAJOR-postgis-3" "postgresql-client-$PG_MAJOR"
		redis-server xfsprogs util-linux ca-certificates procps logrotate
	)
	# The packages' own units would start a cluster on the root volume: masked.
	DIST_MASK=(postgresql.service "postgresql@$PG_MAJOR-main.service" redis-server.service)
	CW_AGENT=no
	pkg_prepare() {
		# policy-rc.d keeps packages from starting daemons inside the build root.
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		apt-get update -q
	}
	pkg_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; }
	pkg_finish() {
		rm -f /usr/sbin/policy-rc.d
		# ZOPS_KEEP_APT_CACHE=1: the archives are a cache bound from outside (the local
		# chroot build), kept for the next build.
		[[ "${ZOPS_KEEP_APT_CACHE:-}" == 1 ]] || apt-get clean
		# Debian creates a cluster on the root volume at install: the box's lives on /data.
		if command -v pg_dropcluster >/dev/null && [[ -d "/etc/postgresql/$PG_MAJOR/main" ]]; then
			pg_dropcluster "$PG_MAJOR" main || true
		fi
	}
	;;
al2023)
	PG_MAJOR=16
	DIST_PG_BIN="/usr/pgsql-$PG_MAJOR/bin"
	DIST_REDIS_SERVER=/usr/bin/valkey-server
	DIST_PACKAGES=(
		"postgresql$PG_MAJOR-server" "postgresql$PG_MAJOR" "postgis34_$PG_MAJOR"
		valkey xfsprogs util-linux ca-certificates procps-ng logrotate amazon-cloudwatch-agent
	)
	DIST_MASK=("postgresql-$PG_MAJOR.service" postgresql.service valkey.service redis.service)
	CW_AGENT=yes
	pkg_prepare() {
		# PGDG for EL9 on aarch64; AL2023's own postgresql packages are excluded so the two
		# never mix.
		cat >/etc/yum.repos.d/pgdg.repo <<REPO
[pgdg-common]
name=PGDG common RPMs for EL9 aarch64
baseurl=https://download.postgresql.org/pub/repos/yum/common/redhat/rhel-9-aarch64
enabled=1
gpgcheck=1
gpgkey=https://download.postgresql.org/pub/repos/yum/keys/PGDG-RPM-GPG-KEY-RHEL
[pgdg$PG_MAJOR]
name=PostgreSQL $PG_MAJOR for EL9 aarch64
baseurl=https://download.postgresql.org/pub/repos/yum/$PG_MAJOR/redhat/rhel-9-aarch64
enabled=1
gpgcheck=1
gpgkey=https://download.postgresql.org/pub/repos/yum/keys/PGDG-RPM-GPG-KEY-RHEL
REPO
		cat >/etc/yum.repos.d/epel9.repo <<'REPO'
[epel9]
name=EPEL 9 for the PostGIS libraries' dependencies
metalink=https://mirrors.fedoraproject.org/metalink?repo=epel-9&arch=aarch64
enabled=1
gpgcheck=1
gpgkey=https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-9
includepkgs=SFCGAL* CGAL* gdal* proj* geos* libspatialite* xerces-c* libkml* ogdi* armadillo* arpack* superlu* hdf5* netcdf* libgta* libdeflate* cfitsio* freexl* libgeotiff* minizip* openblas* flexiblas* libqhull* libarrow* json-c*
REPO
		# AL2023's own repository has packages of the same names (postgresql16-server, ...):
		# exclude them there so only PGDG's are ever installed.
		for repo in /etc/yum.repos.d/amazonlinux*.repo; do
			grep -q '^excludepkgs=postgresql' "$repo" || sed -i '/^\[amazonlinux\]/a excludepkgs=postgresql*' "$repo"
		done
		dnf -y -q makecache
	}
	pkg_install() { dnf -y -q install --setopt=install_weak_deps=False "$@"; }
	pkg_finish() { dnf clean all; }
	;;
*)
	echo "ZOPS_DISTRO must be debian or al2023 (got '${ZOPS_DISTRO}'); the Packer template sets it" >&2
	exit 2
	;;
esac
export ZOPS_DISTRO PG_MAJOR DIST_PG_BIN DIST_REDIS_SERVER CW_AGENT
