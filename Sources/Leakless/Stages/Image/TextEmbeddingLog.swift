import Foundation
import LeaklessCore
import LeaklessEmbedding
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The embeddings of texts the image stage matched, kept per user beside the pool index
/// (`pool-index/texts-<model>.f32log`) so that another workdir, or a rerun with other settings,
/// does not embed the same queries again. One append-only file per model and matrix kernel
/// (whose last bits may differ): each entry is the text's 16-byte XXH3-128 and its vector, written
/// with one `write` in append mode, so processes can share the file; a torn entry at the end
/// (a killed writer) is ignored. Past 256 MB the file is started afresh.
final class TextEmbeddingLog: Sendable {
    let path: String
    let dimension: Int
    private let known: Mutex<[ContentHash: [Float]]>

    static let limit = 256 << 20

    init(folder: String, embedder: SentenceEmbedder) throws {
        // Named as the pool's caption embeddings are: by the model's configuration and size, and
        // the matrix kernel.
        let model = try FileSystem.contentHash(of: FileSystem.join(embedder.folder, "config.json")).hex
        let key = ContentHash(ofString: [model, String(embedder.dimension), BLASKernels.current].joined(separator: "\n")).hex
        path = FileSystem.join(folder, "pool-index", "texts-\(key).f32log")
        dimension = embedder.dimension
        try FileSystem.createDirectory(FileSystem.parent(of: path))
        var entries: [ContentHash: [Float]] = [:]
        let entrySize = 16 + dimension * 4
        if let bytes = try? FileSystem.read(path), bytes.count < Self.limit {
            var offset = 0
            while offset + entrySize <= bytes.count {
                let digest = bytes[offset..<(offset + 16)].map { String(format: "%02x", $0) }.joined()
                var vector = [Float](repeating: 0, count: dimension)
                vector.withUnsafeMutableBytes { target in
                    bytes.withUnsafeBytes { source in
                        target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[(offset + 16)..<(offset + entrySize)]))
                    }
                }
                if let hash = ContentHash(hex: digest) { entries[hash] = vector }
                offset += entrySize
            }
        }
        known = Mutex(entries)
    }

    func vector(_ text: String) -> [Float]? {
        known.withLock { $0[ContentHash(ofString: text)] }
    }

    /// Keeps a text's vector, in memory and (best effort) in the file.
    func keep(_ text: String, _ vector: [Float]) {
        let hash = ContentHash(ofString: text)
        known.withLock { $0[hash] = vector }
        guard vector.count == dimension else { return }
        var entry = [UInt8]()
        entry.reserveCapacity(16 + dimension * 4)
        var hex = hash.hex.utf8.makeIterator()
        func nibble(_ c: UInt8) -> UInt8 { c >= 0x61 ? c - 0x61 + 10 : c - 0x30 }
        while let high = hex.next(), let low = hex.next() { entry.append(nibble(high) << 4 | nibble(low)) }
        vector.withUnsafeBytes { entry.append(contentsOf: $0) }
        var info = stat()
        let flags = stat(path, &info) == 0 && Int(info.st_size) >= Self.limit ? O_WRONLY | O_TRUNC | O_CREAT | O_APPEND : O_WRONLY | O_CREAT | O_APPEND
        let descriptor = open(path, flags | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        // A torn entry (a killed writer) would misalign everything after it: start afresh.
        let size = lseek(descriptor, 0, SEEK_END)
        guard size >= 0 else { return }
        if Int(size) % entry.count != 0 && ftruncate(descriptor, 0) != 0 { return }
        _ = entry.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }
}
