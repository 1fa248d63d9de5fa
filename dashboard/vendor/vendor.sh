#!/usr/bin/env bash
# Copies the libraries the dashboard embeds from their npm packages, at
# the versions package-lock.json pins, into ../assets/vendor/.
#   ./vendor.sh          install (npm ci) and copy
#   ./vendor.sh --check  install and fail if a committed copy differs
# Only maintainers changing a library, and CI, run this: `go build` needs
# no Node.js, the copies are committed.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --silent
out=../assets/vendor
# name in node_modules -> file in the package -> copy
copies=(
  "@dagrejs/dagre dist/dagre.esm.js dagre.esm.js"
  "@dagrejs/dagre LICENSE dagre.LICENSE"
  "@dagrejs/dagre dist/dagre.esm.js.LEGAL.txt dagre.esm.js.LEGAL.txt"
)
status=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for c in "${copies[@]}"; do
  read -r pkg file name <<<"$c"
  # Source maps stay out of the embedded assets.
  sed '/^\/\/# sourceMappingURL=/d' "node_modules/$pkg/$file" >"$tmp/$name"
  if [ "${1:-}" = "--check" ]; then
    if ! cmp -s "$tmp/$name" "$out/$name"; then
      echo "dashboard/assets/vendor/$name does not match $pkg from package-lock.json: run dashboard/vendor/vendor.sh" >&2
      status=1
    fi
  else
    cp "$tmp/$name" "$out/$name"
  fi
done
exit $status
