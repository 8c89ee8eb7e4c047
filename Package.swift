// swift-tools-version:6.0
import PackageDescription

let stageExecutables = ["extract", "rewrite", "detect", "image", "filter", "dedup", "export"]

let package = Package(
    name: "leakless",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Leakless", targets: ["Leakless"]),
        .executable(name: "leakless", targets: ["leakless"]),
    ] + stageExecutables.map { .executable(name: "leakless-\($0)", targets: ["leakless-\($0)"]) },
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C libraries, each behind a system-library target.
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        // Typed wrappers for what Swift cannot call: variadic curl_easy_setopt, libjpeg's and libpng's
        // longjmp errors (the image decoders, with their row handling, live there for that reason).
        .target(name: "CLeaklessShims", dependencies: ["CCurl", "CJPEG", "CPNG", "CXXHash"]),

        .target(name: "LeaklessCore", dependencies: ["CXXHash", "CLeaklessShims", .product(name: "Yams", package: "Yams")]),
        .target(name: "LeaklessImaging", dependencies: ["CPNG", "CJPEG", "CLeaklessShims"]),
        .target(name: "LeaklessNetwork", dependencies: ["CCurl", "CLeaklessShims"]),
        .target(name: "LeaklessModels", dependencies: ["LeaklessCore", "LeaklessImaging", "LeaklessNetwork"]),
        .target(name: "Leakless", dependencies: ["LeaklessCore", "LeaklessImaging", "LeaklessNetwork", "LeaklessModels"]),
        // A local server speaking the model wire formats, for tests, benchmarks and offline trials.
        .target(name: "LeaklessMockServer", dependencies: ["LeaklessCore", "LeaklessImaging"]),
        .target(name: "LeaklessCommandSupport", dependencies: [
            "Leakless", "LeaklessMockServer", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .executableTarget(name: "leakless", dependencies: ["LeaklessCommandSupport"]),

        .testTarget(name: "LeaklessTests", dependencies: ["Leakless", "LeaklessMockServer"], resources: [.copy("Fixtures")]),
    ] + stageExecutables.map {
        .executableTarget(name: "leakless-\($0)", dependencies: ["LeaklessCommandSupport"])
    },
    swiftLanguageModes: [.v5]
)
