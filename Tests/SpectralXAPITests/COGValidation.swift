import Foundation
import Testing

/// rio-cogeo's `cog_validate` on a file, plus its nodata (255) and CRS (EPSG:32650); optionally the
/// 512² tiling, overviews and a colour table of at least `classes` entries. Skipped with a message when
/// rasterio/rio-cogeo are not installed (`scripts/setup.sh --test` installs them).
func validateCOG(at file: URL, classes: Int? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let python = Process()
    python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    python.arguments = ["python3", "-c", """
        import sys
        try:
            import rasterio
            from rio_cogeo.cogeo import cog_validate
        except ImportError:
            print("skip"); sys.exit(0)
        ok, err, warn = cog_validate(sys.argv[1], quiet=True)
        d = rasterio.open(sys.argv[1])
        classes = int(sys.argv[2])
        print(ok, err, d.nodata, d.crs.to_epsg(), d.block_shapes, d.overviews(1), len(d.colormap(1)))
        good = ok and d.nodata == 255 and d.crs.to_epsg() == 32650
        if classes >= 0:
            good = good and d.block_shapes == [(512, 512)] and d.overviews(1) and len(d.colormap(1)) >= classes
        sys.exit(0 if good else 1)
        """, file.path, String(classes ?? -1)]
    let pipe = Pipe()
    python.standardOutput = pipe
    try python.run()
    python.waitUntilExit()
    let said = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    if said.hasPrefix("skip") { print("skipping COG validation: rio-cogeo/rasterio not installed") }
    #expect(python.terminationStatus == 0, "cog_validate: \(said)", sourceLocation: sourceLocation)
}
