#!/usr/bin/env bash
# Regenerates Sources/SpectralXAPI/ViewerPage.swift from viewer/index.html (served at GET / to browsers).
# OGCRouteTests.viewerPageIsTheRepositoryFile fails when the two differ.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 - <<'PY'
text = open("viewer/index.html", encoding="utf-8").read()
assert '"""#' not in text, "viewer/index.html must not contain the raw-string terminator"
body = "\n".join(("    " + l) if l else "" for l in text.split("\n"))
out = ("// Generated from viewer/index.html by scripts/service/embed-viewer.sh; a test checks they are equal.\n"
       "enum ViewerPage {\n    static let html = #\"\"\"\n" + body + "\n    \"\"\"#\n}\n")
open("Sources/SpectralXAPI/ViewerPage.swift", "w", encoding="utf-8").write(out)
PY
