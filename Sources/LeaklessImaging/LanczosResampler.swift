#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Pillow's Lanczos-3 resize of an 8-bit plane, to the bit: the same coefficients (double
/// precision, normalised, then fixed point with 22 fractional bits), the horizontal pass first
/// over only the rows the vertical pass reads, rounding to 8 bits between the passes, and the
/// same clipping (Pillow's `Resample.c`, `precompute_coeffs` and `normalize_coeffs_8bpc`).
/// Reproducing it is what makes a pHash equal to Python imagehash's.
public final class LanczosResampler {
    /// One axis: for each output sample, the first input sample it reads and its weights.
    struct Kernel {
        let starts: [Int]
        let counts: [Int]
        /// `size` weights per output sample, zero-padded.
        let weights: [Int32]
        let size: Int
    }

    static let precisionBits: Int32 = 22
    private var kernels: [Int64: Kernel] = [:]

    public init() {}

    /// The plane resized to `width` x `height`.
    public func resize(_ plane: LumaPlane, width: Int, height: Int) -> LumaPlane {
        let needHorizontal = width != plane.width, needVertical = height != plane.height
        guard needHorizontal || needVertical else { return plane }
        let vertical = kernel(from: plane.height, to: height)
        let firstRow = vertical.starts[0]
        let lastRow = vertical.starts[height - 1] + vertical.counts[height - 1]
        var rows = plane.pixels
        var rowsStart = 0
        if needHorizontal {
            let horizontal = kernel(from: plane.width, to: width)
            let rowCount = needVertical ? lastRow - firstRow : plane.height
            let firstIn = needVertical ? firstRow : 0
            var temporary = [UInt8](repeating: 0, count: rowCount * width)
            plane.pixels.withUnsafeBufferPointer { input in
                temporary.withUnsafeMutableBufferPointer { output in
                    horizontal.weights.withUnsafeBufferPointer { weights in
                        for row in 0..<rowCount {
                            let source = input.baseAddress! + (firstIn + row) * plane.width
                            let target = output.baseAddress! + row * width
                            for x in 0..<width {
                                target[x] = Self.convolve(
                                    source + horizontal.starts[x], weights.baseAddress! + x * horizontal.size, horizontal.counts[x])
                            }
                        }
                    }
                }
            }
            guard needVertical else { return LumaPlane(width: width, height: height, pixels: temporary) }
            rows = temporary
            rowsStart = firstRow
        }
        var output = [UInt8](repeating: 0, count: width * height)
        let stride = width
        rows.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { target in
                vertical.weights.withUnsafeBufferPointer { weights in
                    var column = [Int32](repeating: 0, count: stride)
                    for y in 0..<height {
                        let k = weights.baseAddress! + y * vertical.size
                        let start = vertical.starts[y] - rowsStart
                        for x in 0..<stride { column[x] = 1 << (Self.precisionBits - 1) }
                        column.withUnsafeMutableBufferPointer { sums in
                            for i in 0..<vertical.counts[y] {
                                let source = input.baseAddress! + (start + i) * stride
                                let weight = k[i]
                                for x in 0..<stride { sums[x] &+= Int32(source[x]) &* weight }
                            }
                            for x in 0..<stride { target[y * width + x] = Self.clip(sums[x]) }
                        }
                    }
                }
            }
        }
        return LumaPlane(width: width, height: height, pixels: output)
    }

    @inline(__always)
    static func convolve(_ source: UnsafePointer<UInt8>, _ weights: UnsafePointer<Int32>, _ count: Int) -> UInt8 {
        var sum: Int32 = 1 << (precisionBits - 1)
        for i in 0..<count { sum &+= Int32(source[i]) &* weights[i] }
        return clip(sum)
    }

    @inline(__always)
    static func clip(_ value: Int32) -> UInt8 {
        if value <= 0 { return 0 }
        if value >= (1 << (precisionBits + 8)) { return 255 }
        return UInt8(truncatingIfNeeded: value >> precisionBits)
    }

    func kernel(from inSize: Int, to outSize: Int) -> Kernel {
        let key = Int64(inSize) << 32 | Int64(outSize)
        if let known = kernels[key] { return known }
        let made = Self.makeKernel(from: inSize, to: outSize)
        kernels[key] = made
        return made
    }

    static func lanczos(_ x: Double) -> Double {
        func sinc(_ x: Double) -> Double {
            if x == 0.0 { return 1.0 }
            let y = x * Double.pi
            return sin(y) / y
        }
        return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0
    }

    static func makeKernel(from inSize: Int, to outSize: Int) -> Kernel {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 3.0 * filterScale
        let size = Int(support.rounded(.up)) * 2 + 1
        var starts = [Int](repeating: 0, count: outSize), counts = [Int](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * size)
        var row = [Double](repeating: 0, count: size)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1.0 / filterScale
            // C casts truncate toward zero.
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var total = 0.0
            for x in 0..<xmax {
                let w = lanczos((Double(x + xmin) - center + 0.5) * ss)
                row[x] = w
                total += w
            }
            for x in 0..<xmax where total != 0.0 { row[x] /= total }
            let one = Double(1 << precisionBits)
            for x in 0..<xmax {
                weights[xx * size + x] = Int32(row[x] < 0 ? -0.5 + row[x] * one : 0.5 + row[x] * one)
            }
            starts[xx] = xmin
            counts[xx] = xmax
        }
        return Kernel(starts: starts, counts: counts, weights: weights, size: size)
    }
}
