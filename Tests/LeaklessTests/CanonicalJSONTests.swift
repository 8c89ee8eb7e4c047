import XCTest

@testable import LeaklessCore

final class CanonicalJSONTests: XCTestCase {
    func testKeyOrderAndWhitespaceDoNotChangeTheCanonicalForm() throws {
        let a = try JSONParser.parse(#"{"b": [true, null], "a": 1}"#)
        let b = try JSONParser.parse("{\n  \"a\":1,\"b\":[ true,null ]\n}")
        XCTAssertEqual(JSONWriter.canonical(a), #"{"a":1,"b":[true,null]}"#)
        XCTAssertEqual(JSONWriter.canonical(a), JSONWriter.canonical(b))
        XCTAssertEqual(ContentHash(ofJSON: a), ContentHash(ofJSON: b))
    }

    func testContentHashIsXXH3_128InCanonicalHex() {
        // Reference values from the xxhash library (Python binding, xxh3_128_hexdigest).
        XCTAssertEqual(ContentHash(of: [UInt8]()).hex, "99aa06d3014798d86001c324468d497f")
        XCTAssertEqual(ContentHash(ofString: #"{"a":1,"b":[true,null]}"#).hex, "c7ad5c57d93ae8eccb6d6577c70387e1")
        let streaming = StreamingContentHash()
        streaming.update(Array(#"{"a":1,"#.utf8))
        streaming.update(Array(#""b":[true,null]}"#.utf8))
        XCTAssertEqual(streaming.finish().hex, "c7ad5c57d93ae8eccb6d6577c70387e1")
    }

    func testUnicodeEscapesAndRawUTF8AreTheSameContent() throws {
        let escaped = try JSONParser.parse(#"{"q":"caf\u00e9 \ud83d\ude00"}"#)
        let raw = try JSONParser.parse(#"{"q":"café 😀"}"#)
        XCTAssertEqual(escaped, raw)
        XCTAssertEqual(JSONWriter.canonical(raw), #"{"q":"café 😀"}"#)
        // Control characters are escaped; "/" is not.
        XCTAssertEqual(JSONWriter.canonical(.string("a/b\n\u{1}")), #""a/b\n\u0001""#)
    }

    func testKeysSortByUTF8Bytes() {
        let value: JSONValue = ["é": 1, "z": 2, "A": 3, "a": 4]
        XCTAssertEqual(JSONWriter.canonical(value), #"{"A":3,"a":4,"z":2,"é":1}"#)
    }

    func testIntegralDoublesWriteAsIntegers() throws {
        XCTAssertEqual(JSONWriter.canonical(try JSONParser.parse("[1.0, 1, 2.5, -0.0, 1e2]")), "[1,1,2.5,0,100]")
        XCTAssertEqual(Record(["n": .double(3.0)]).id, Record(["n": .int(3)]).id)
    }

    func testCanonicalOutputRoundTrips() throws {
        let text = #"{"a":[1,2.25,"x\"y",{"k":null}],"b":false}"#
        XCTAssertEqual(JSONWriter.canonical(try JSONParser.parse(text)), text)
    }

    func testSyntaxErrorsSayWhatAndWhere() {
        let cases: [(String, String)] = [
            (#"{"a":1,}"#, "expected a key"),
            (#"{"a" 1}"#, "expected ':'"),
            (#"[1 2]"#, "expected ',' or ']'"),
            (#"{"a":1}x"#, "after the JSON value"),
            (#""abc"#, "unterminated string"),
            (#"{"a":1,"a":2}"#, "duplicate key"),
            ("01", "leading zero"),
            (#""\x""#, "invalid escape"),
            (#""\ud800""#, "unpaired high surrogate"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try JSONParser.parse(text), text) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(text): \(error)")
            }
        }
    }

    func testRecordIDExcludesTheIDFieldAndChecksAStatedOne() throws {
        let record = Record(["query": "What is this?", "parents": []])
        var withID = record.fields
        withID["id"] = .string(record.id)
        XCTAssertEqual(try Record(validating: .object(withID)).id, record.id)
        withID["id"] = "00000000000000000000000000000000"
        XCTAssertThrowsError(try Record(validating: .object(withID))) { error in
            XCTAssertTrue("\(error)".contains("does not match"))
        }
        XCTAssertThrowsError(try Record(validating: [1, 2]))
    }
}
