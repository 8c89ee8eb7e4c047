/// Small renderings of numbers and C strings, each written once.

public func formatSeconds(_ seconds: Double) -> String {
    seconds < 10 ? String(format1: seconds, digits: 2) + " s" : String(format1: seconds, digits: 1) + " s"
}

extension String {
    /// A fixed-point rendering without Foundation's format strings.
    public init(format1 value: Double, digits: Int) {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int64(scaled / scale)
        var fraction = String(Int64(scaled) - whole * Int64(scale))
        while fraction.count < digits { fraction = "0" + fraction }
        self = (value < 0 && scaled != 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + fraction : "")
    }
}

extension UInt64 {
    /// Sixteen lower-case hex digits, leading zeros kept.
    public var paddedHex: String {
        let digits = String(self, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

extension Double {
    /// Rounded to `places` decimal places, for figures written to reports and files.
    public func rounded(places: Int) -> Double {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (self * scale).rounded() / scale
    }
}

extension String {
    /// The text of a C library's NUL-terminated message buffer.
    public init(messageBuffer buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
