/// Distinct colours for class indices: a hand-picked set for the first classes, then hues spaced by
/// the golden angle.
public enum ClassPalette {
    public static func colors(count: Int) -> [(UInt8, UInt8, UInt8)] {
        let base: [(UInt8, UInt8, UInt8)] = [
            (0, 0, 0), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
            (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (255, 255, 255),
        ]
        return (0..<max(1, min(256, count))).map { i in
            if i < base.count { return base[i] }
            let h = (Double(i) * 137.508).truncatingRemainder(dividingBy: 360) / 60
            let x = 1 - abs(h.truncatingRemainder(dividingBy: 2) - 1)
            let (r, g, b): (Double, Double, Double)
            switch Int(h) {
            case 0: (r, g, b) = (1, x, 0)
            case 1: (r, g, b) = (x, 1, 0)
            case 2: (r, g, b) = (0, 1, x)
            case 3: (r, g, b) = (0, x, 1)
            case 4: (r, g, b) = (x, 0, 1)
            default: (r, g, b) = (1, 0, x)
            }
            return (UInt8(40 + r * 200), UInt8(40 + g * 200), UInt8(40 + b * 200))
        }
    }
}
