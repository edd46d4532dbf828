/// Checks of a weight file against the layout from its safetensors header alone: cheap (no tensor
/// byte is read), so a domain whose `domain.json` contradicts its weights is refused before any
/// hashing, binding or weight transformation.
extension StateDictLayout {
    /// The HyperT stem's first convolution, `(64, C, 1, 1)`: its second dimension is the band count.
    public static let bandsKey = "vit_backbone.patch_embed.proj.proj.downsample_module.conv1.weight"
    /// The classifier, `(K, 512, 1, 1)`: its first dimension is the class count.
    public static let classesKey = "head.conv_seg.weight"

    /// Band and class counts a domain file's header implies (nil when the key is absent or not 4-D).
    public static func dimensions(of header: SafeTensorsHeader) -> (bands: Int?, classes: Int?) {
        func dim(_ key: String, _ i: Int) -> Int? {
            guard let e = header.entry(named: key), e.shape.count == 4 else { return nil }
            return e.shape[i]
        }
        return (dim(bandsKey, 1), dim(classesKey, 0))
    }

    /// Whether inference reads the tensor (unused modules and buffers are ignored by the binder, spec Q15).
    static func isBound(_ e: StateDictEntry) -> Bool {
        guard e.role != .unused else { return false }
        let ignored: Set<String> = [WeightRule.intZero.rawValue, WeightRule.mmoeWNoise.rawValue,
                                    WeightRule.mmoeMean.rawValue, WeightRule.mmoeStd.rawValue]
        return !ignored.contains(e.rule)
    }

    /// Every tensor of `file` that inference binds must be in `header` as float32 with the layout's
    /// shape. Returns the problems (at most `limit` listed, then a count), empty when the file fits.
    public func headerProblems(_ header: SafeTensorsHeader, file: WeightFile, limit: Int = 8) -> [String] {
        var problems: [String] = []
        var count = 0
        for e in entries(in: file) where Self.isBound(e) {
            let problem: String
            if let found = header.entry(named: e.key) {
                if found.shape != e.shape {
                    problem = "\(e.key): expected shape \(e.shape), found \(found.shape)"
                } else if found.dtype != e.dtype {
                    problem = "\(e.key): expected dtype \(e.dtype.rawValue), found \(found.dtype.rawValue)"
                } else { continue }
            } else {
                problem = "\(e.key): missing (expected shape \(e.shape))"
            }
            count += 1
            if problems.count < limit { problems.append(problem) }
        }
        if count > problems.count { problems.append("… and \(count - problems.count) more") }
        return problems
    }
}
