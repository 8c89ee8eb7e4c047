import ArgumentParser
import Foundation
import Leakless
import LeaklessCore
import LeaklessImaging

extension HashMode: ExpressibleByArgument {}

/// The image files a command was given: files as they are, folders by their PNG and JPEG files
/// in name order.
public func imageFiles(_ paths: [String]) throws -> [String] {
    var files: [String] = []
    for path in paths {
        if FileSystem.isDirectory(path) {
            let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
            files += names.filter { ["png", "jpg", "jpeg"].contains($0.split(separator: ".").last?.lowercased() ?? "") }
                .map { FileSystem.join(path, $0) }
        } else {
            files.append(path)
        }
    }
    return files
}

public struct HashCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "Print the perceptual hashes (pHash, dHash, aHash as imagehash writes them) and pixel digest of image files, one JSON line each.")

    @Option(help: "fast (DCT-scaled JPEG decode, EXIF orientation applied) or compatible (exactly as Python imagehash).")
    var mode: HashMode = .fast

    @Option(help: "Worker threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(help: "Skip the PNG chunk CRCs (for measurement: a damaged file may then go unseen).")
    var skipCrc = false

    @Argument(help: "Image files, or folders of them.")
    var paths: [String]

    public init() {}

    public func run() throws {
        try reportingErrors {
            let files = try imageFiles(paths)
            var hasher = ImageFileHasher(mode: mode, threads: threads)
            hasher.skipCRC = skipCrc
            let progress = Progress(label: "hash")
            let results = hasher.fingerprint(paths: files) { done in progress.tick("\(done) of \(files.count) files") }
            var failed = 0
            for (file, result) in zip(files, results) {
                var line: [String: JSONValue] = ["file": .string(file)]
                switch result {
                case .success(let found):
                    line["phash"] = .string(ImageHashes.hex(found.hashes.phash))
                    line["dhash"] = .string(ImageHashes.hex(found.hashes.dhash))
                    line["ahash"] = .string(ImageHashes.hex(found.hashes.ahash))
                    line["pixels"] = .string(found.pixelDigest)
                    line["format"] = .string(found.format.rawValue)
                    line["width"] = .int(Int64(found.width))
                    line["height"] = .int(Int64(found.height))
                case .failure(let error):
                    failed += 1
                    line["error"] = .string(error.reason.rawValue)
                    line["detail"] = .string(error.message)
                }
                print(JSONWriter.canonical(.object(line)))
            }
            progress.finish("\(files.count) files, \(failed) unreadable, in \(formatSeconds(progress.elapsed))")
            if files.isEmpty { throw ValidationError("no PNG or JPEG file in \(paths.joined(separator: ", "))") }
            // Like sha256sum: every file gets its line, and the status says whether any could not be read.
            if failed > 0 { throw ExitCode.failure }
        }
    }
}
