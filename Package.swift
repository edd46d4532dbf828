// swift-tools-version:6.1
// The layering is the architecture: each target depends only on the ones above it in this list.
//   COpenSSL, CZlib → SpectralXSupport (mapped files, SHA-256, CRC-32/Adler-32, atomic writes; no other dependency)
//   CBLAS, CSpectralXKernels → SpectralXTensor (kernels) → SpectralXLayers → SpectralXModel (the SpectralX network)
//   SpectralXSupport → SpectralXCheckpoint (safetensors, weight generator, store layout) → SpectralXModel
//   SpectralXCheckpoint → SpectralXCheckpointImport (upstream .ckpt: zip + safe unpickler) → spectralx
//   CZlib, SpectralXSupport → SpectralXRaster (GeoTIFF / NumPy / preprocessing; knows nothing of the model)
//   CLibPQ, SpectralXSupport → SpectralXPostgres (libpq pool, migrations, the fleet's job table)
//   SpectralXModel + SpectralXRaster + SpectralXPostgres + SpectralXBlobStore → SpectralXEngine (model store, batching, tiling, jobs)
//   COpenSSL, SpectralXSupport → SpectralXHTTP (HTTP/1.1 codec and socket server; knows nothing of models)
//   COpenSSL → SpectralXFetch (outgoing HTTP/1.1 client, SigV4, fetch allow-list) → SpectralXBlobStore (file:// and s3:// blob stores)
//   SpectralXRaster + SpectralXBlobStore → SpectralXRemote (COGs read in place by range over HTTP(S)/S3, STAC items);
//     SpectralXRaster itself never touches the network: it reads through its ByteRangeSource protocol
//   SpectralXEngine + SpectralXHTTP + SpectralXRemote → SpectralXAPI (routes; jobs by reference) → spectralx (CLI; SpectralXRemote for URL inputs)
//
// Linux only (glibc): the code uses glibc (`mallopt` through CMalloc, `Glibc` calls), `/proc`, and
// the system OpenSSL, zlib and OpenBLAS; hence no `platforms:` entry claiming macOS.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "spectralx",
    products: [
        .executable(name: "spectralx", targets: ["spectralx"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .systemLibrary(name: "CLibPQ", path: "Sources/CLibPQ"),

        // The bottom of the graph: what several layers need (mapped files, SHA-256, checksums, atomic writes).
        .target(name: "SpectralXSupport", dependencies: ["COpenSSL", "CZlib"], swiftSettings: strict),
        // Element-wise kernels in C, compiled per instruction set (generic/AVX2/AVX-512) and chosen at run time.
        .target(name: "CSpectralXKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "SpectralXTensor", dependencies: ["CBLAS", "CMalloc", "CSpectralXKernels"], swiftSettings: strict),
        .target(name: "SpectralXLayers", dependencies: ["SpectralXTensor"], swiftSettings: strict),
        .target(name: "SpectralXCheckpoint", dependencies: ["SpectralXSupport"], swiftSettings: strict),
        .target(name: "SpectralXCheckpointImport", dependencies: ["SpectralXCheckpoint", "SpectralXSupport"], swiftSettings: strict),
        .target(name: "SpectralXModel", dependencies: ["SpectralXLayers", "SpectralXTensor", "SpectralXCheckpoint"], swiftSettings: strict),
        .target(name: "SpectralXRaster", dependencies: ["CZlib", "CSpectralXKernels", "SpectralXSupport"], swiftSettings: strict),
        // PostgreSQL through libpq: the pool, migrations and the fleet's job table (knows nothing of models).
        .target(name: "SpectralXPostgres", dependencies: ["CLibPQ", "SpectralXSupport"], swiftSettings: strict),
        .target(
            name: "SpectralXEngine",
            dependencies: [
                "SpectralXModel", "SpectralXRaster", "SpectralXPostgres", "SpectralXBlobStore", "SpectralXSupport", "CMalloc",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        .target(
            name: "SpectralXHTTP",
            dependencies: ["COpenSSL", "SpectralXSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .target(name: "SpectralXFetch", dependencies: ["COpenSSL"], swiftSettings: strict),
        .target(name: "SpectralXBlobStore", dependencies: ["SpectralXFetch"], swiftSettings: strict),
        .target(name: "SpectralXRemote", dependencies: ["SpectralXRaster", "SpectralXBlobStore", "SpectralXFetch"], swiftSettings: strict),
        .target(
            name: "SpectralXAPI",
            dependencies: [
                "SpectralXEngine", "SpectralXHTTP", "SpectralXSupport", "SpectralXRemote", "SpectralXFetch",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "spectralx",
            dependencies: [
                "SpectralXAPI", "SpectralXEngine", "SpectralXModel", "SpectralXRaster", "SpectralXTensor", "SpectralXCheckpoint",
                "SpectralXCheckpointImport",
                "SpectralXLayers", "SpectralXHTTP", "SpectralXPostgres", "SpectralXBlobStore", "SpectralXSupport", "COpenSSL", "SpectralXRemote", "SpectralXFetch",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),

        // Shared by the test targets: one synthesized model store per test process, fixture lookup.
        // moto's S3 server for the blob store and fleet tests.
        .target(name: "SpectralXTestSupport", dependencies: ["SpectralXCheckpoint", "SpectralXPostgres", "SpectralXBlobStore", "SpectralXFetch"],
                path: "Tests/SpectralXTestSupport"),
        // The engine and API tests' fake runner and describe-only stores (no weights).
        .target(name: "SpectralXEngineTestSupport", dependencies: ["SpectralXEngine", "SpectralXCheckpoint", "SpectralXSupport"],
                path: "Tests/SpectralXEngineTestSupport"),
        .testTarget(name: "SpectralXTensorTests", dependencies: ["SpectralXTensor", "CSpectralXKernels", "SpectralXTestSupport"]),
        .testTarget(name: "SpectralXSupportTests", dependencies: ["SpectralXSupport"]),
        .testTarget(name: "SpectralXCheckpointTests", dependencies: ["SpectralXCheckpoint", "SpectralXSupport"]),
        .testTarget(
            name: "SpectralXCheckpointImportTests", dependencies: ["SpectralXCheckpointImport", "SpectralXCheckpoint", "SpectralXSupport"],
            exclude: ["Fixtures"]),
        .testTarget(
            name: "SpectralXModelTests", dependencies: ["SpectralXModel", "SpectralXCheckpoint", "SpectralXRaster", "SpectralXTestSupport"],
            exclude: ["Data"]),  // small upstream arrays, read from the source tree by #filePath
        .testTarget(name: "SpectralXRasterTests", dependencies: ["SpectralXRaster"]),
        .testTarget(name: "SpectralXPostgresTests", dependencies: ["SpectralXPostgres", "SpectralXTestSupport"]),
        .testTarget(name: "SpectralXHTTPTests", dependencies: ["SpectralXHTTP", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "SpectralXBlobStoreTests", dependencies: ["SpectralXBlobStore", "SpectralXFetch", "SpectralXRemote", "SpectralXRaster", "SpectralXTestSupport"]),
        .testTarget(name: "SpectralXCLITests", dependencies: ["SpectralXCheckpoint", "SpectralXRaster", "SpectralXHTTP", "SpectralXTestSupport"]),
        .testTarget(
            name: "SpectralXEngineTests",
            dependencies: ["SpectralXEngine", "SpectralXModel", "SpectralXCheckpoint", "SpectralXRaster", "SpectralXPostgres",
                           "SpectralXBlobStore", "SpectralXTestSupport", "SpectralXEngineTestSupport"]),
        .testTarget(
            name: "SpectralXAPITests",
            dependencies: ["SpectralXAPI", "SpectralXEngine", "SpectralXHTTP", "SpectralXCheckpoint", "SpectralXRaster",
                           "SpectralXPostgres", "SpectralXBlobStore", "SpectralXFetch", "SpectralXRemote", "SpectralXTestSupport", "SpectralXEngineTestSupport"]),
    ]
)
