import Foundation
import LeaklessCore

/// A CSV file as RFC 4180 writes it: comma-separated, fields optionally quoted with `"` (a quote
/// inside doubled), quoted fields may hold commas and line breaks, rows end with LF or CRLF. The
/// first row names the columns. Each row keeps the line it starts on, for errors.
public struct CSVTable {
    public let path: String
    public let columns: [String]
    public let rows: [(line: Int, fields: [String: String])]

    public init(path: String) throws {
        try self.init(path: path, text: String(decoding: try FileSystem.read(path), as: UTF8.self))
    }

    public init(path: String, text: String) throws {
        self.path = path
        var records: [(line: Int, fields: [String])] = []
        var field = "", row: [String] = []
        var quoted = false, fieldWasQuoted = false, line = 1, rowLine = 1
        var scalars = Array(text.unicodeScalars)
        if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
        var index = 0
        func endRow() {
            row.append(field)
            if !(row.count == 1 && row[0].isEmpty && !fieldWasQuoted) { records.append((rowLine, row)) }
            row = []
            field = ""
            fieldWasQuoted = false
        }
        while index < scalars.count {
            let c = scalars[index]
            if quoted {
                if c == "\"" {
                    if index + 1 < scalars.count && scalars[index + 1] == "\"" {
                        field.unicodeScalars.append("\"")
                        index += 1
                    } else {
                        quoted = false
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
            } else if c == "\"" {
                guard field.isEmpty else {
                    throw LocatedError(path: path, line: line, message: "a quote inside an unquoted field (quote the whole field and double the quote)")
                }
                quoted = true
                fieldWasQuoted = true
            } else if c == "," {
                row.append(field)
                field = ""
                fieldWasQuoted = false
            } else if c == "\r" && index + 1 < scalars.count && scalars[index + 1] == "\n" {
                // CRLF: the LF ends the row.
            } else if c == "\n" {
                endRow()
                line += 1
                rowLine = line
            } else {
                field.unicodeScalars.append(c)
            }
            index += 1
        }
        if quoted { throw LocatedError(path: path, line: rowLine, message: "a quoted field is never closed") }
        if !field.isEmpty || !row.isEmpty || fieldWasQuoted { endRow() }
        guard let header = records.first else { throw LocatedError(path: path, line: 1, message: "the file is empty: expected a header row") }
        columns = header.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        var seen = Set<String>()
        for column in columns where !seen.insert(column).inserted {
            throw LocatedError(path: path, line: header.line, message: "the header names the column '\(column)' twice")
        }
        var table: [(line: Int, fields: [String: String])] = []
        for record in records.dropFirst() {
            guard record.fields.count == columns.count else {
                throw LocatedError(
                    path: path, line: record.line,
                    message: "expected \(columns.count) fields (\(columns.joined(separator: ", "))), found \(record.fields.count)")
            }
            table.append((record.line, Dictionary(uniqueKeysWithValues: zip(columns, record.fields))))
        }
        rows = table
    }

    /// Fails, naming the file, when a column the format needs is missing.
    public func require(_ names: [String], format: String) throws {
        let missing = names.filter { !columns.contains($0) }
        guard missing.isEmpty else {
            throw LocatedError(
                path: path, line: 1,
                message: "not a \(format) file: missing column(s) \(missing.joined(separator: ", ")) (found \(columns.joined(separator: ", ")))")
        }
    }
}
