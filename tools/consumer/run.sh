#!/usr/bin/env bash
# Builds the consumer project (tools/consumer) against Mosaic as a user gets it: Mosaic's modules
# are deployed to a file repository (target/consumer-repo), and the consumer, which declares only
# the README's dependency block and that repository, runs its Pipeline test. Nothing is written to
# ~/.m2: both builds use their own local repository (target/consumer-m2, see settings.xml).
# Extra arguments go to the deploy build (e.g. -Dmosaic.cuda.skip=true). Not offline (-o): Maven
# then refuses file:// repositories too.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
repo=$root/target/consumer-repo

m2=$root/target/consumer-m2
maven=(-s tools/consumer/settings.xml -Dmaven.repo.local="$m2")

rm -rf "$repo"
echo "consumer: deploying Mosaic to $repo"
# Its own local repository here too: deploying also caches the deployed artifacts in the local
# repository, and in ~/.m2 they would shadow the modules of other builds (-pl without -am).
mvn -B -q "${maven[@]}" -DskipTests deploy -DaltDeploymentRepository="local::file://$repo" "$@"

echo "consumer: building tools/consumer against it"
# Drop that cached copy, so the consumer resolves Mosaic from $repo as a user would.
rm -rf "$m2/dev/mosaic"
mvn -B -ntp "${maven[@]}" -f tools/consumer/pom.xml -Dmosaic.repo="$repo" verify
