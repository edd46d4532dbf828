#!/usr/bin/env bash
# Regenerates Sources/SpectralXAPI/OpenAPIDocument.swift from openapi.yaml (served at GET /openapi.yaml).
# RouteTests.openAPIDocumentIsTheRepositoryFile fails when the two differ.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 - <<'PY'
text = open("openapi.yaml", encoding="utf-8").read()
assert '"""' not in text, "openapi.yaml must not contain triple quotes"
body = "\n".join(("    " + l) if l else "" for l in text.split("\n"))
out = ("// Generated from openapi.yaml by scripts/service/embed-openapi.sh; a test checks they are equal.\n"
       "enum OpenAPIDocument {\n    static let yaml = #\"\"\"\n" + body + "\n    \"\"\"#\n}\n")
open("Sources/SpectralXAPI/OpenAPIDocument.swift", "w", encoding="utf-8").write(out)
PY
