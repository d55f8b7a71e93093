#!/usr/bin/env bash
# The deploy step of examples/github-deploy.yml in this repository, whose environments are the
# bundled demo's: replace it with your own deploy (kubectl, helm, your platform's CLI).
#   DEPLOY_ENV=local scripts/deploy.sh 1.2.3
set -euo pipefail
version=${1:?usage: scripts/deploy.sh VERSION}
case "${DEPLOY_ENV:?set DEPLOY_ENV}" in
  local)
    # Each gate starts the demo itself (environments.yaml, start:), serving the version the
    # gate expects: there is nothing to deploy between them.
    echo "local: the demo serves $version when each gate starts it"
    ;;
  *)
    echo "no deploy of $version to $DEPLOY_ENV here: replace scripts/deploy.sh with your deploy" >&2
    exit 1
    ;;
esac
