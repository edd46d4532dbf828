// Generated from openapi.yaml by scripts/service/embed-openapi.sh; a test checks they are equal.
enum OpenAPIDocument {
    static let yaml = """
    openapi: 3.0.3
    """
}
