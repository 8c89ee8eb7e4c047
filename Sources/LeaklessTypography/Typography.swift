import CPangoCairo
import Foundation
import LeaklessImaging

/// Text drawn into images with Pango and Cairo, in the layouts published typographic
/// benchmarks use: the key phrase alone (MM-SafetyBench "TYPO"), a picture with the key phrase
/// in a band below it (MM-SafetyBench "SD_TYPO"), and a heading over a numbered, empty list
/// (FigStep).
public struct Typography: Sendable, Equatable {
    public enum Layout: String, Sendable, CaseIterable {
        /// The text alone, black on white.
        case typo
        /// A picture, scaled to the width, with the text in a band below it.
        case sdTypo = "sd_typo"
        /// The text as a heading, then "1.", "2.", "3." with nothing after them, on a square.
        case figstep
    }

    public enum Wrap: String, Sendable, CaseIterable {
        case word, char
        case wordChar = "word_char"
    }

    public var layout: Layout
    /// A Pango font family and style, e.g. "DejaVu Sans Bold"; it must be installed.
    public var font: String
    /// The text's size in pixels.
    public var size: Int
    /// The image's width in pixels (FigStep: its side).
    public var width: Int
    public var wrap: Wrap
    /// The margin around the text, in pixels.
    public var margin: Int
    /// Numbered lines under a FigStep heading.
    public var listItems: Int

    public init(layout: Layout = .typo, font: String = "DejaVu Sans Bold", size: Int = 96, width: Int = 768, wrap: Wrap = .wordChar,
                margin: Int = 32, listItems: Int = 3) {
        self.layout = layout
        self.font = font
        self.size = size
        self.width = width
        self.wrap = wrap
        self.margin = margin
        self.listItems = listItems
    }

    /// What was drawn, for provenance.
    public struct Drawn: Sendable {
        public let image: DecodedImage
        /// The text as laid out (FigStep: with its numbered lines).
        public let text: String
        /// The font family fontconfig gave.
        public let fontFamily: String
    }

    /// Draws `text` in the layout; `picture` is required by `sd_typo` and ignored otherwise.
    public func render(_ text: String, picture: DecodedImage? = nil) throws -> Drawn {
        let drawnText = layout == .figstep ? ([text] + (1...max(listItems, 1)).map { "\($0)." }).joined(separator: "\n") : text
        Self.lock.lock()
        defer { Self.lock.unlock() }
        let textWidth = width - 2 * margin
        guard textWidth >= size else { throw TypographyError("width \(width) leaves no room for \(size)-pixel text within a \(margin)-pixel margin") }
        let (family, textHeight) = try measure(drawnText, textWidth: textWidth)
        switch layout {
        case .typo:
            let image = try draw(drawnText, textWidth: textWidth, height: textHeight + 2 * margin, top: margin, picture: nil)
            return Drawn(image: image, text: drawnText, fontFamily: family)
        case .figstep:
            let side = max(width, textHeight + 2 * margin)
            let image = try draw(drawnText, textWidth: textWidth, height: side, top: margin, picture: nil, canvasWidth: side)
            return Drawn(image: image, text: drawnText, fontFamily: family)
        case .sdTypo:
            guard let picture else { throw TypographyError("the sd_typo layout draws the text under a picture, and none was given") }
            let scaled = Self.scaled(picture, toWidth: width)
            let image = try draw(drawnText, textWidth: textWidth, height: scaled.height + textHeight + 2 * margin, top: scaled.height + margin,
                                 picture: scaled)
            return Drawn(image: image, text: drawnText, fontFamily: family)
        }
    }

    // Pango's font machinery is shared by the process.
    private static let lock = NSLock()

    private func layout(on cairo: OpaquePointer, text: String, textWidth: Int) throws -> (layout: OpaquePointer, family: String) {
        guard let layout = pango_cairo_create_layout(cairo) else { throw TypographyError("Pango could not make a layout") }
        guard let description = pango_font_description_from_string(font) else {
            g_object_unref(UnsafeMutableRawPointer(layout))
            throw TypographyError("'\(font)' is not a font description")
        }
        defer { pango_font_description_free(description) }
        pango_font_description_set_absolute_size(description, Double(size) * Double(PANGO_SCALE))
        pango_layout_set_font_description(layout, description)
        pango_layout_set_width(layout, Int32(textWidth) * PANGO_SCALE)
        pango_layout_set_wrap(layout, wrap == .word ? PANGO_WRAP_WORD : wrap == .char ? PANGO_WRAP_CHAR : PANGO_WRAP_WORD_CHAR)
        pango_layout_set_text(layout, text, -1)
        // The family fontconfig really gives: a missing font is an error, not a silent fallback.
        var family = ""
        if let context = pango_layout_get_context(layout), let loaded = pango_context_load_font(context, description) {
            if let described = pango_font_describe(loaded) {
                if let name = pango_font_description_get_family(described) { family = String(cString: name) }
                pango_font_description_free(described)
            }
            g_object_unref(UnsafeMutableRawPointer(loaded))
        }
        let asked = pango_font_description_get_family(description).map { String(cString: $0) } ?? ""
        if !asked.isEmpty, family.lowercased() != asked.lowercased() {
            g_object_unref(UnsafeMutableRawPointer(layout))
            throw TypographyError("the font '\(asked)' is not installed (fontconfig gave '\(family)'): install it (fonts-dejavu-core has DejaVu Sans) or name another")
        }
        return (layout, family)
    }

    private func measure(_ text: String, textWidth: Int) throws -> (family: String, height: Int) {
        guard let surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1) else { throw TypographyError("Cairo could not make a surface") }
        defer { cairo_surface_destroy(surface) }
        guard let cairo = cairo_create(surface) else { throw TypographyError("Cairo could not draw") }
        defer { cairo_destroy(cairo) }
        let (layout, family) = try self.layout(on: cairo, text: text, textWidth: textWidth)
        defer { g_object_unref(UnsafeMutableRawPointer(layout)) }
        var width: Int32 = 0, height: Int32 = 0
        pango_layout_get_pixel_size(layout, &width, &height)
        return (family, Int(height))
    }

    private func draw(_ text: String, textWidth: Int, height: Int, top: Int, picture: DecodedImage?, canvasWidth: Int? = nil) throws -> DecodedImage {
        let canvas = canvasWidth ?? width
        guard height > 0, height <= 16_384 else { throw TypographyError("the text needs an image \(height) pixels high: shorten it or make the text smaller") }
        guard let surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(canvas), Int32(height)) else {
            throw TypographyError("Cairo could not make a \(canvas)x\(height) surface")
        }
        defer { cairo_surface_destroy(surface) }
        guard let cairo = cairo_create(surface) else { throw TypographyError("Cairo could not draw") }
        defer { cairo_destroy(cairo) }
        cairo_set_source_rgb(cairo, 1, 1, 1)
        cairo_paint(cairo)
        cairo_set_source_rgb(cairo, 0, 0, 0)
        let (layout, _) = try self.layout(on: cairo, text: text, textWidth: textWidth)
        defer { g_object_unref(UnsafeMutableRawPointer(layout)) }
        cairo_move_to(cairo, Double(margin), Double(top))
        pango_cairo_show_layout(cairo, layout)
        cairo_surface_flush(surface)
        // Cairo's RGB24 is a native-endian 0x00RRGGBB word per pixel.
        let stride = Int(cairo_image_surface_get_stride(surface))
        guard let data = cairo_image_surface_get_data(surface) else { throw TypographyError("Cairo gave no pixels") }
        var pixels = [UInt8](repeating: 0, count: canvas * height * 3)
        for y in 0..<height {
            let row = data.advanced(by: y * stride).withMemoryRebound(to: UInt32.self, capacity: canvas) { $0 }
            for x in 0..<canvas {
                let word = UInt32(littleEndian: row[x])
                let target = (y * canvas + x) * 3
                pixels[target] = UInt8((word >> 16) & 0xFF)
                pixels[target + 1] = UInt8((word >> 8) & 0xFF)
                pixels[target + 2] = UInt8(word & 0xFF)
            }
        }
        if let picture {
            // The picture fills the rows above the band.
            for y in 0..<min(picture.height, height) {
                for x in 0..<min(picture.width, canvas) {
                    let source = (y * picture.width + x) * picture.channels
                    let target = (y * canvas + x) * 3
                    if picture.channels == 1 {
                        pixels[target] = picture.pixels[source]; pixels[target + 1] = picture.pixels[source]; pixels[target + 2] = picture.pixels[source]
                    } else {
                        pixels[target] = picture.pixels[source]; pixels[target + 1] = picture.pixels[source + 1]; pixels[target + 2] = picture.pixels[source + 2]
                    }
                }
            }
        }
        return DecodedImage(width: canvas, height: height, channels: 3, pixels: pixels)
    }

    /// The picture scaled (Lanczos) to `width`, keeping its aspect.
    static func scaled(_ picture: DecodedImage, toWidth width: Int) -> DecodedImage {
        guard picture.width != width else { return picture }
        if picture.width > width { return ImageCodec.thumbnail(picture, side: max(width, width * picture.height / picture.width)) }
        return ImageCodec.resize(picture, width: width, height: max(1, picture.height * width / picture.width))
    }
}

public struct TypographyError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
