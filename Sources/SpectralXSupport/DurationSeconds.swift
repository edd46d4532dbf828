extension Duration {
    /// The duration in seconds, for metrics, `Retry-After` arithmetic and `Date` conversions.
    public var inSeconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }

    /// The duration in whole nanoseconds (truncated toward zero), for histograms kept in nanoseconds.
    public var inNanoseconds: Int64 {
        let c = components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
}
