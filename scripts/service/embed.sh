#!/usr/bin/env bash
# Regenerates the Swift copies of the files the server embeds (so the binary serves them without reading
# the source tree): openapi.yaml → Sources/SpectralXAPI/OpenAPIDocument.swift (GET /openapi.yaml) and
# viewer/index.html → Sources/SpectralXAPI/ViewerPage.swift (GET / for browsers).
# RouteTests.openAPIDocumentIsTheRepositoryFile and OGCRouteTests.viewerPageIsTheRepositoryFile fail when a
# copy differs from its file.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 - <<'PY'
def embed(source, target, enum, member):
    text = open(source, encoding="utf-8").read()
    assert '"""#' not in text, f"{source} must not contain the raw-string terminator"
    body = "\n".join(("    " + l) if l else "" for l in text.split("\n"))
    out = (f"// Generated from {source} by scripts/service/embed.sh; a test checks they are equal.\n"
           f"enum {enum} {{\n    static let {member} = #\"\"\"\n" + body + "\n    \"\"\"#\n}\n")
    open(target, "w", encoding="utf-8").write(out)

embed("openapi.yaml", "Sources/SpectralXAPI/OpenAPIDocument.swift", "OpenAPIDocument", "yaml")
embed("viewer/index.html", "Sources/SpectralXAPI/ViewerPage.swift", "ViewerPage", "html")
PY
