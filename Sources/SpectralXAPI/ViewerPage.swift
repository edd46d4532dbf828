// Generated from viewer/index.html by scripts/service/embed-viewer.sh; a test checks they are equal.
enum ViewerPage {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>spectralx</title></head>
    <body><main><h1>spectralx</h1><p>OGC API – Processes: <a href="/processes">processes</a>, <a href="/conformance">conformance</a>, <a href="/jobs">jobs</a>, <a href="/openapi.yaml">OpenAPI</a>.</p></main></body>
    </html>

    """#
}
