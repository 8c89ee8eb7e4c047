// swift-tools-version:6.0
import Foundation
import PackageDescription

/// One executable per stage, each a thin shell over the library's stage of that name: every
/// `Sources/leakless-<stage>/` folder (the development commands' `leakless-dev` aside), so a new
/// stage's executable is its folder alone.
let stageExecutables = ((try? FileManager.default.contentsOfDirectory(atPath: Context.packageDirectory + "/Sources")) ?? [])
    .filter { $0.hasPrefix("leakless-") && $0 != "leakless-dev" }
    .map { String($0.dropFirst("leakless-".count)) }
    .sorted()

let package = Package(
    name: "leakless",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Leakless", targets: ["Leakless"]),
        .library(name: "LeaklessCore", targets: ["LeaklessCore"]),
        .library(name: "LeaklessImaging", targets: ["LeaklessImaging"]),
        .library(name: "LeaklessModels", targets: ["LeaklessModels"]),
        .library(name: "LeaklessEmbedding", targets: ["LeaklessEmbedding"]),
        .executable(name: "leakless", targets: ["leakless"]),
        .executable(name: "leakless-dev", targets: ["leakless-dev"]),
    ] + stageExecutables.map { .executable(name: "leakless-\($0)", targets: ["leakless-\($0)"]) },
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        // C libraries, each behind a system-library target.
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPangoCairo", pkgConfig: "pangocairo", providers: [.apt(["libpango1.0-dev"])]),
        // Typed wrappers for what Swift cannot call, one target per boundary: signals and the
        // popcount loop (no library); variadic curl_easy_setopt; libjpeg's and libpng's longjmp
        // errors (the image decoders, with their row handling, live there for that reason).
        // Optimised in debug builds too: its GELU and popcount loops are the embedding's and
        // dedup's inner loops.
        .target(name: "CCoreShims", cSettings: [.unsafeFlags(["-O2"], .when(configuration: .debug))]),
        .target(name: "CCurlShims", dependencies: ["CCurl"]),
        .target(name: "CImageShims", dependencies: ["CJPEG", "CPNG", "CXXHash"]),

        // Optimised in debug builds too: every stage's records pass through its JSON reader,
        // writer and content hashes.
        .target(name: "LeaklessCore", dependencies: ["CXXHash", "CCoreShims", .product(name: "Yams", package: "Yams")],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        // Optimised in debug builds too: resampling and hashing are per-pixel loops.
        .target(name: "LeaklessImaging", dependencies: ["LeaklessCore", "CPNG", "CJPEG", "CImageShims"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "LeaklessNetwork", dependencies: ["LeaklessCore", "CCurl", "CCurlShims"]),
        .target(name: "LeaklessModels", dependencies: ["LeaklessCore", "LeaklessImaging", "LeaklessNetwork"]),
        // Sentence embeddings (all-MiniLM-L6-v2) in Swift over OpenBLAS.
        // Optimised in debug builds too: the builtin stages embed thousands of captions.
        .target(name: "LeaklessEmbedding", dependencies: ["LeaklessCore", "CCoreShims", "COpenBLAS"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        // Text drawn into images (typographic benchmarks) with Pango and Cairo.
        // Optimised in debug builds too: drawing composites pixel by pixel.
        .target(name: "LeaklessTypography", dependencies: ["LeaklessImaging", "CPangoCairo"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "Leakless", dependencies: [
            "LeaklessCore", "LeaklessImaging", "LeaklessNetwork", "LeaklessModels", "LeaklessEmbedding", "LeaklessTypography",
        ]),
        // The review app: a local web server (FlyingFox) over the review session.
        .target(name: "LeaklessReview", dependencies: ["Leakless", .product(name: "FlyingFox", package: "FlyingFox")]),
        // What a stage executable needs to run its stage, and no more (no review server).
        .target(name: "LeaklessStageCommand", dependencies: [
            "Leakless", "LeaklessEmbedding", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "LeaklessCommandSupport", dependencies: [
            "Leakless", "LeaklessEmbedding", "LeaklessReview", "LeaklessStageCommand", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "leakless", dependencies: ["Leakless", "LeaklessCommandSupport", "LeaklessStageCommand"]),

        // Development only: a local server speaking the model wire formats (tests, benchmarks,
        // offline trials) and the benchmark commands, in `leakless-dev`.
        .target(name: "LeaklessMockServer", dependencies: ["Leakless"]),
        .target(name: "LeaklessDevCommands", dependencies: ["LeaklessCommandSupport", "LeaklessMockServer", "LeaklessEmbedding"]),
        .executableTarget(name: "leakless-dev", dependencies: ["LeaklessDevCommands", "LeaklessStageCommand"]),

        .testTarget(name: "LeaklessTests", dependencies: ["Leakless", "LeaklessMockServer", "LeaklessTypography", "LeaklessReview", "LeaklessDevCommands"], resources: [.copy("Fixtures")]),
    ] + stageExecutables.map {
        .executableTarget(name: "leakless-\($0)", dependencies: ["LeaklessStageCommand"])
    },
    swiftLanguageModes: [.v6]
)
