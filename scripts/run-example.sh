#!/usr/bin/env bash
# The quick start's main job: deploy examples/classifier on the embedded local target with the real
# Serverless Framework (osls), run its caller through the generated typed client, then remove it
# (set KEEP=1 to leave it running).
set -euo pipefail
cd "$(dirname "$0")/../examples/classifier"
export SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off
sls=(node ../../node_modules/osls/bin/serverless.js)
if [ "${KEEP:-0}" != 1 ]; then trap '"${sls[@]}" remove --stage local' EXIT; fi
"${sls[@]}" deploy --stage local
node ../../node_modules/tsx/dist/cli.mjs caller.ts
