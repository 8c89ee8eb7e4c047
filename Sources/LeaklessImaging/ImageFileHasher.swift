import Foundation
import LeaklessCore

/// Fingerprints many files on several threads: each worker owns a hasher, takes the next file,
/// maps it and hashes it. Results come back in the order of the paths.
public struct ImageFileHasher: Sendable {
    public var mode: HashMode
    public var threads: Int
    public var skipCRC = false

    public init(mode: HashMode, threads: Int) {
        self.mode = mode
        self.threads = max(1, threads)
    }

    public func fingerprint(path: String, hasher: PerceptualHasher) -> Result<ImageFingerprint, ImageError> {
        do {
            let file = try MappedFile(path: path)
            return .success(try hasher.fingerprint(file.bytes, mode: mode, skipCRC: skipCRC))
        } catch let error as ImageError {
            return .failure(error)
        } catch {
            return .failure(ImageError(reason: .unreadable, message: "\(error)"))
        }
    }

    /// `progress` is called (from the worker threads, serialised) after each file.
    public func fingerprint(paths: [String], progress: (@Sendable (Int) -> Void)? = nil) -> [Result<ImageFingerprint, ImageError>] {
        WorkerPool.map(count: paths.count, workers: threads, makeState: { PerceptualHasher() }, progress: progress) { hasher, index in
            fingerprint(path: paths[index], hasher: hasher)
        }
    }
}
