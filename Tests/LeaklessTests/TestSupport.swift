import Foundation
import XCTest

@testable import Leakless
@testable import LeaklessCore

/// The project's root folder (this file is Tests/LeaklessTests/TestSupport.swift).
let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

func fixture(_ name: String) -> String {
    Bundle.module.path(forResource: name, ofType: nil, inDirectory: "Fixtures")!
}

/// A fresh temporary folder, removed when the test ends.
func temporaryFolder(_ test: XCTestCase) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("leakless-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

func write(_ text: String, to path: String) throws {
    try FileSystem.createDirectory(FileSystem.parent(of: path))
    try text.write(toFile: path, atomically: false, encoding: .utf8)
}

/// A copy of the project's pipeline inputs (pipeline.yaml, stages/, data/) in a temporary folder,
/// so a test can edit and run them without touching the project.
func projectCopy(_ test: XCTestCase) throws -> String {
    let folder = try temporaryFolder(test)
    for item in ["pipeline.yaml", "stages", "data"] {
        try FileManager.default.copyItem(atPath: FileSystem.join(projectRoot, item), toPath: FileSystem.join(folder, item))
    }
    return folder
}

/// The folder the package's executables are built into (beside the test bundle).
func executablesFolder() throws -> String {
    var url = Bundle.module.bundleURL
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("leakless-extract").path) {
            return url.path
        }
    }
    throw XCTSkip("the stage executables are not built (run 'swift build' first)")
}

/// Runs a built executable and returns its exit status, stdout and stderr.
func runExecutable(_ name: String, _ arguments: [String], in folder: String, environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.executableURL = URL(fileURLWithPath: FileSystem.join(try executablesFolder(), name))
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: folder)
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// The one file in the workdir's store whose name starts and ends so, or nil.
func storeFileIfAny(_ folder: String, _ prefix: String, _ suffix: String) throws -> String? {
    let store = FileSystem.join(folder, "out/store")
    let names = try FileManager.default.contentsOfDirectory(atPath: store)
        .filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) && ($0.hasSuffix(".stats.json") || !$0.contains(".rejects.") && !$0.contains(".stats.") && !$0.contains(".request.")) }
    return names.first.map { FileSystem.join(store, $0) }
}

func storeFile(_ folder: String, _ prefix: String, _ suffix: String) throws -> String {
    guard let path = try storeFileIfAny(folder, prefix, suffix) else { throw RecordError("no \(prefix)*\(suffix) in the store") }
    return path
}

/// A seed record of the taxonomy's loaded-handgun element with this harmful query.
func handgunSeed(query: String) -> Record {
    Record([
        "kind": "seed", "category": "Violent", "sub_category": "Weapon-Related Violence", "source": "generation",
        "element": [
            "name": "a loaded handgun", "kind": "object", "terms": ["handgun", "pistol", "gun", "loaded"],
            "refer": ["this device", "the object shown"], "scene": "A loaded handgun on a table.", "safety": "Risky.",
        ],
        "image_description": "A loaded handgun on a table.", "safety_reason": "Risky.", "query": .string(query),
        "template": "", "parents": ["0123"],
    ])
}
