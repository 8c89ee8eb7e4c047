import Foundation

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
    public func fingerprint(paths: [String], progress: ((Int) -> Void)? = nil) -> [Result<ImageFingerprint, ImageError>] {
        let work = Work(count: paths.count)
        let group = DispatchGroup()
        for _ in 0..<min(threads, max(1, paths.count)) {
            group.enter()
            let thread = Thread {
                let hasher = PerceptualHasher()
                while let index = work.take() {
                    let done = work.put(fingerprint(path: paths[index], hasher: hasher), at: index)
                    if let progress { work.serialised { progress(done) } }
                }
                group.leave()
            }
            thread.start()
        }
        group.wait()
        return work.results.map { $0! }
    }
}

/// The shared state of a parallel hash: the next file to take and the results so far.
private final class Work: @unchecked Sendable {
    private let lock = NSLock()
    private let count: Int
    private var next = 0
    private var done = 0
    private(set) var results: [Result<ImageFingerprint, ImageError>?]

    init(count: Int) {
        self.count = count
        results = Array(repeating: nil, count: count)
    }

    func take() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard next < count else { return nil }
        next += 1
        return next - 1
    }

    func put(_ result: Result<ImageFingerprint, ImageError>, at index: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        results[index] = result
        done += 1
        return done
    }

    func serialised(_ body: () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        body()
    }
}
