// swift-tools-version:6.0
import PackageDescription

/// libFuzzer targets over the parsers of untrusted input: JSONL records, pipeline.yaml, model
/// replies, the importers' CSV and the PNG/JPEG decoder. Built and run by `scripts/fuzz`.
let targets = ["FuzzJSONL", "FuzzPipelineConfig", "FuzzReply", "FuzzCSV", "FuzzImageDecode"]

let package = Package(
    name: "LeaklessFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "leakless", path: "..")],
    targets: [.target(name: "FuzzSupport")] + targets.map {
        .executableTarget(name: $0, dependencies: [
            "FuzzSupport",
            .product(name: "Leakless", package: "leakless"), .product(name: "LeaklessCore", package: "leakless"),
            .product(name: "LeaklessImaging", package: "leakless"), .product(name: "LeaklessModels", package: "leakless"),
        ])
    },
    swiftLanguageModes: [.v6]
)
