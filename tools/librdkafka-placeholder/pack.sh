#!/usr/bin/env bash
# Packs the placeholder librdkafka.redist 1.9.2 into tools/nuget-local (offline, no package downloads).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/../nuget-local"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
dotnet pack "$here/Placeholder.csproj" -o "$out" -p:BaseIntermediateOutputPath="$tmp/obj/" -p:OutputPath="$tmp/bin/" --nologo
ls -l "$out"
