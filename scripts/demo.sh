#!/usr/bin/env bash
# The main job: digitize the bundled sample scans on the embedded stack and print
# where the searchable PDFs are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p var/searchable
# The document-type model: trained once from generated documents (about 20 s), so that
# the samples are classified and their fields extracted.
[ -e .sohoa/models/current ] || .venv/bin/sohoa train --no-labels
.venv/bin/sohoa digitize fixtures/samples --out var/searchable "$@"
echo "Searchable PDFs: $(pwd)/var/searchable/  (state kept in .sohoa/; 'sohoa up' serves it)"
