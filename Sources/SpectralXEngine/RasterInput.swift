import SpectralXRaster

/// Turns the accepted upload formats into a `Raster` (band-sequential samples) so both paths share
/// one pipeline.
public enum RasterInput {
    /// A NumPy array of shape (C,H,W) (or (H,W) for one band), C order, any numeric dtype.
    public static func raster(from npy: NpyArray) throws -> Raster {
        let shape = npy.shape.count == 2 ? [1] + npy.shape : npy.shape
        guard shape.count == 3 else {
            throw EngineError.incompatibleInput("NumPy input must have shape (C,H,W) or (H,W), got \(npy.shape)")
        }
        guard shape.allSatisfy({ $0 > 0 }) else { throw EngineError.incompatibleInput("NumPy input has an empty axis: \(npy.shape)") }
        guard !npy.fortranOrder else { throw EngineError.incompatibleInput("Fortran-ordered NumPy arrays are not accepted; save with C order") }
        let (c, h, w) = (shape[0], shape[1], shape[2])
        let type: SampleType
        switch (npy.dtype.kind, npy.dtype.size) {
        case (.float, 4): type = .float32
        case (.float, 8): type = .float64
        case (.uint, 1), (.bool, 1): type = .uint8
        case (.int, 1): type = .int8
        case (.uint, 2): type = .uint16
        case (.int, 2): type = .int16
        case (.uint, 4): type = .uint32
        case (.int, 4): type = .int32
        case (.uint, 8): type = .uint64
        case (.int, 8): type = .int64
        default: throw EngineError.incompatibleInput("unsupported NumPy dtype \(npy.dtype)")
        }
        if npy.dtype.littleEndian || npy.dtype.size == 1 {
            return try Raster(width: w, height: h, bands: c, sampleType: type, data: npy.data)
        }
        // Big-endian: byte-swap each sample to host order.
        var data = npy.data
        let s = npy.dtype.size
        var i = 0
        while i + s <= data.count { data[i..<(i + s)].reverse(); i += s }
        return try Raster(width: w, height: h, bands: c, sampleType: type, data: data)
    }
}
