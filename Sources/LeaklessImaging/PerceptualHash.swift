import LeaklessCore
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// How an image is decoded for hashing.
public enum HashMode: String, Sendable, CaseIterable {
    /// JPEG decoded in the DCT domain at the smallest scale (1/2, 1/4, 1/8) that keeps 32 pixels
    /// a side, luma only; PNG luma averaged over blocks of the same size; then the Lanczos resize
    /// to 32x32; dHash and aHash from that 32x32 image; EXIF orientation applied.
    case fast
    /// Everything as Python imagehash computes it: full decode, no EXIF orientation, each hash
    /// resized from the full image. Agrees with `imagehash.phash`, `dhash` and `average_hash`.
    case compatible
}

/// The three 64-bit perceptual hashes of imagehash (hash_size 8), bit 63 first, as its hex
/// strings read.
public struct ImageHashes: Sendable, Equatable, Hashable {
    public var phash: UInt64
    public var dhash: UInt64
    public var ahash: UInt64

    public init(phash: UInt64, dhash: UInt64, ahash: UInt64) {
        self.phash = phash
        self.dhash = dhash
        self.ahash = ahash
    }

    public static func hex(_ value: UInt64) -> String { value.paddedHex }

    public static func parse(hex text: String) -> UInt64? {
        text.utf8.count == 16 ? UInt64(text, radix: 16) : nil
    }
}

/// pHash, dHash and aHash of a luma plane. Not shared between threads: each worker owns one (it
/// keeps the resize kernels of the sizes it has met).
public final class PerceptualHasher {
    private let resampler = LanczosResampler()
    /// The unnormalised DCT-II rows 0..7 over 32 samples: 2 cos(pi k (2n + 1) / 64), as
    /// scipy.fftpack.dct computes them.
    private static let cosines: [Double] = (0..<8).flatMap { k in
        (0..<32).map { n in 2.0 * cos(Double.pi * Double(k) * Double(2 * n + 1) / 64.0) }
    }

    public init() {}

    public func hashes(of plane: LumaPlane, mode: HashMode) -> ImageHashes {
        let small = resampler.resize(plane, width: 32, height: 32)
        let source = mode == .fast ? small : plane
        return ImageHashes(
            phash: Self.phash(small),
            dhash: Self.dhash(resampler.resize(source, width: 9, height: 8)),
            ahash: Self.ahash(resampler.resize(source, width: 8, height: 8)))
    }

    /// imagehash.phash of a 32x32 plane: 2-D DCT-II, the top-left 8x8 including DC, bit set where
    /// the coefficient exceeds the median of the 64.
    static func phash(_ plane: LumaPlane) -> UInt64 {
        precondition(plane.width == 32 && plane.height == 32)
        // Along axis 0 (down the columns), then axis 1.
        var columns = [Double](repeating: 0, count: 8 * 32)
        cosines.withUnsafeBufferPointer { c in
            plane.pixels.withUnsafeBufferPointer { p in
                for k in 0..<8 {
                    for n in 0..<32 {
                        let weight = c[k * 32 + n]
                        for x in 0..<32 { columns[k * 32 + x] += weight * Double(p[n * 32 + x]) }
                    }
                }
            }
        }
        var low = [Double](repeating: 0, count: 64)
        for i in 0..<8 {
            for j in 0..<8 {
                var sum = 0.0
                for x in 0..<32 { sum += columns[i * 32 + x] * cosines[j * 32 + x] }
                low[i * 8 + j] = sum
            }
        }
        let sorted = low.sorted()
        let median = (sorted[31] + sorted[32]) / 2
        return bits(low.map { $0 > median })
    }

    /// imagehash.dhash of a 9x8 plane: each pixel brighter than its left neighbour.
    static func dhash(_ plane: LumaPlane) -> UInt64 {
        var flags: [Bool] = []
        for y in 0..<8 {
            for x in 0..<8 { flags.append(plane.pixels[y * 9 + x + 1] > plane.pixels[y * 9 + x]) }
        }
        return bits(flags)
    }

    /// imagehash.average_hash of an 8x8 plane: each pixel above the mean.
    static func ahash(_ plane: LumaPlane) -> UInt64 {
        let mean = Double(plane.pixels.reduce(0) { $0 + Int($1) }) / 64.0
        return bits(plane.pixels.map { Double($0) > mean })
    }

    private static func bits(_ flags: [Bool]) -> UInt64 {
        flags.reduce(0) { $0 << 1 | ($1 ? 1 : 0) }
    }
}

/// What hashing one file gives: the hashes, the pixel digest and the size.
public struct ImageFingerprint: Sendable, Equatable {
    public let hashes: ImageHashes
    /// XXH3-128 of the decoded pixels (at the decode scale), for exact duplicates.
    public let pixelDigest: String
    public let format: ImageFormat
    public let width: Int
    public let height: Int

    public init(hashes: ImageHashes, pixelDigest: String, format: ImageFormat, width: Int, height: Int) {
        self.hashes = hashes
        self.pixelDigest = pixelDigest
        self.format = format
        self.width = width
        self.height = height
    }
}

extension PerceptualHasher {
    /// The decode each mode asks for.
    public static func decodeOptions(_ mode: HashMode, skipCRC: Bool = false) -> DecodeOptions {
        var options = DecodeOptions(luma: true, digest: true)
        options.skipCRC = skipCRC
        switch mode {
        case .fast:
            options.minimumSide = 32
            options.jpegGreyOnly = true
            options.boxLuma = true
            options.skipAdler32 = true
        case .compatible:
            options.orient = false
        }
        return options
    }

    public func fingerprint(_ bytes: UnsafeRawBufferPointer, mode: HashMode, skipCRC: Bool = false) throws -> ImageFingerprint {
        let frame = try ImageCodec.decode(bytes, options: Self.decodeOptions(mode, skipCRC: skipCRC))
        return ImageFingerprint(
            hashes: hashes(of: frame.luma!, mode: mode), pixelDigest: frame.digest!, format: frame.format,
            width: frame.sourceWidth, height: frame.sourceHeight)
    }

    public func fingerprint(_ bytes: [UInt8], mode: HashMode, skipCRC: Bool = false) throws -> ImageFingerprint {
        try bytes.withUnsafeBytes { try fingerprint($0, mode: mode, skipCRC: skipCRC) }
    }
}
