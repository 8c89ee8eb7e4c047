/// Serialises JSON values.
///
/// Canonical form (what content hashes are computed over): object keys sorted by their UTF-8
/// bytes, no whitespace, strings with only the escapes JSON requires (quote, backslash, control
/// characters) and everything else as raw UTF-8, integers in decimal, other numbers in Swift's
/// shortest round-trip form, and integral doubles below 2^53 written as integers. Parsing
/// canonical output and writing it again gives the same bytes.
public enum JSONWriter {
    public static func canonical(_ value: JSONValue) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        write(value, into: &output, indent: nil, level: 0)
        return String(decoding: output, as: UTF8.self)
    }

    public static func canonicalBytes(_ value: JSONValue) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        write(value, into: &output, indent: nil, level: 0)
        return output
    }

    /// Sorted keys with `indent` spaces per level, for files people read (data.json, reports).
    public static func pretty(_ value: JSONValue, indent: Int = 2) -> String {
        var output: [UInt8] = []
        write(value, into: &output, indent: indent, level: 0)
        output.append(0x0A)
        return String(decoding: output, as: UTF8.self)
    }

    /// Keys in the given order first (the rest sorted), for files whose field order is a convention.
    public static func pretty(_ value: JSONValue, keyOrder: [String], indent: Int = 2) -> String {
        var output: [UInt8] = []
        write(value, into: &output, indent: indent, level: 0, keyOrder: keyOrder)
        output.append(0x0A)
        return String(decoding: output, as: UTF8.self)
    }

    static func sortedKeys(_ keys: Dictionary<String, JSONValue>.Keys, order: [String] = []) -> [String] {
        let rank = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        return keys.sorted { a, b in
            switch (rank[a], rank[b]) {
            case let (ra?, rb?): return ra < rb
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return a.utf8.lexicographicallyPrecedes(b.utf8)
            }
        }
    }

    private static func newline(_ output: inout [UInt8], indent: Int?, level: Int) {
        guard let indent else { return }
        output.append(0x0A)
        output.append(contentsOf: repeatElement(0x20, count: indent * level))
    }

    private static func write(
        _ value: JSONValue, into output: inout [UInt8], indent: Int?, level: Int, keyOrder: [String] = []
    ) {
        switch value {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .int(let number): output.append(contentsOf: String(number).utf8)
        case .double(let number): output.append(contentsOf: formatDouble(number).utf8)
        case .string(let string): writeString(string, into: &output)
        case .array(let items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                newline(&output, indent: indent, level: level + 1)
                write(item, into: &output, indent: indent, level: level + 1, keyOrder: keyOrder)
            }
            if !items.isEmpty { newline(&output, indent: indent, level: level) }
            output.append(UInt8(ascii: "]"))
        case .object(let fields):
            output.append(UInt8(ascii: "{"))
            for (index, key) in sortedKeys(fields.keys, order: keyOrder).enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                newline(&output, indent: indent, level: level + 1)
                writeString(key, into: &output)
                output.append(UInt8(ascii: ":"))
                if indent != nil { output.append(0x20) }
                write(fields[key]!, into: &output, indent: indent, level: level + 1, keyOrder: keyOrder)
            }
            if !fields.isEmpty { newline(&output, indent: indent, level: level) }
            output.append(UInt8(ascii: "}"))
        }
    }

    static func formatDouble(_ number: Double) -> String {
        if number.rounded() == number, abs(number) < 9_007_199_254_740_992 {
            return String(Int64(number))
        }
        return "\(number)"
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A string as canonical JSON writes it (quoted, escaped), appended to `output`: for lines of
    /// a fixed shape written without building a JSON value.
    public static func appendString(_ string: String, to output: inout [UInt8]) {
        writeString(string, into: &output)
    }

    /// A number as canonical JSON writes it.
    public static func number(_ value: Double) -> String { formatDouble(value) }

    private static func writeString(_ string: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        // Most strings need no escape: their bytes go in at once.
        let plain = string.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else { return false }
            output.append(contentsOf: bytes)
            return true
        }
        if plain == true {
            output.append(UInt8(ascii: "\""))
            return
        }
        for byte in string.utf8 {
            switch byte {
            case 0x22: output.append(contentsOf: [0x5C, 0x22])
            case 0x5C: output.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: output.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x00..<0x20:
                output.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30])
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0xF)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
