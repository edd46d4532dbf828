import Foundation

/// Just enough XML for S3's responses (flat, known element names, no attributes we need): the
/// runtime image has no libxml2, which FoundationXML would need.
enum MiniXML {
    /// The inner text of every `<tag>…</tag>` (or `<tag attr="…">…</tag>`) in `xml`, in order.
    static func elements(_ tag: String, in xml: Substring) -> [Substring] {
        var out: [Substring] = []
        var rest = xml[...]
        let close = "</\(tag)>"
        while let open = rest.range(of: "<\(tag)") {
            let after = rest[open.upperBound...]
            guard let first = after.first, first == ">" || first == " " || first == "/" else { rest = after; continue }
            guard let gt = after.firstIndex(of: ">") else { break }
            if after[..<gt].hasSuffix("/") { out.append(after[gt..<gt]); rest = after[after.index(after: gt)...]; continue }
            let body = after[after.index(after: gt)...]
            guard let end = body.range(of: close) else { break }
            out.append(body[..<end.lowerBound])
            rest = body[end.upperBound...]
        }
        return out
    }

    static func first(_ tag: String, in xml: Substring) -> String? { elements(tag, in: xml).first.map { decode($0) } }

    /// Resolves the five named entities and numeric references.
    static func decode(_ s: Substring) -> String {
        guard s.contains("&") else { return String(s) }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "&", let semi = s[i...].firstIndex(of: ";"), s.distance(from: i, to: semi) <= 10 {
                let name = s[s.index(after: i)..<semi]
                var scalar: Character?
                switch name {
                case "amp": scalar = "&"
                case "lt": scalar = "<"
                case "gt": scalar = ">"
                case "quot": scalar = "\""
                case "apos": scalar = "'"
                default:
                    if name.hasPrefix("#x"), let v = UInt32(name.dropFirst(2), radix: 16), let u = Unicode.Scalar(v) { scalar = Character(u) }
                    else if name.hasPrefix("#"), let v = UInt32(name.dropFirst()), let u = Unicode.Scalar(v) { scalar = Character(u) }
                }
                if let scalar { out.append(scalar); i = s.index(after: semi); continue }
            }
            out.append(s[i])
            i = s.index(after: i)
        }
        return out
    }

    /// Escapes text for an element body.
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
