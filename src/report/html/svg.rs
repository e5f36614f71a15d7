//! The report's SVG drawing backend for plotters: the same bytes as
//! `plotters_svg::SVGBackend` writes (a test draws through both and
//! compares), written straight into the page's string. plotters' own
//! builds every attribute with `format!` and escapes numbers character by
//! character: ~6,000 instructions a grid line, and a chart has a hundred.

use std::fmt::Write as _;

use plotters::prelude::DrawingBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind, FontStyle,
    FontTransform,
};

/// An SVG document drawn into a string (closed on `present` or drop).
pub struct Svg<'a> {
    buf: &'a mut String,
    size: (u32, u32),
    closed: bool,
}

impl<'a> Svg<'a> {
    /// Opens the `<svg>` element in `buf`.
    pub fn with_string(buf: &'a mut String, size: (u32, u32)) -> Self {
        let _ = writeln!(
            buf,
            "<svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">",
            w = size.0,
            h = size.1
        );
        Svg {
            buf,
            size,
            closed: false,
        }
    }

    /// ` name="`: the start of an attribute.
    fn attr(&mut self, name: &str) {
        self.buf.push(' ');
        self.buf.push_str(name);
        self.buf.push_str("=\"");
    }

    /// An attribute whose value is a number (nothing to escape).
    fn num(&mut self, name: &str, value: impl std::fmt::Display) {
        self.attr(name);
        let _ = write!(self.buf, "{value}\"");
    }

    /// An attribute with a text value, escaped.
    fn text_attr(&mut self, name: &str, value: &str) {
        self.attr(name);
        escape(self.buf, value);
        self.buf.push('"');
    }

    /// `opacity="…"` and `name="#RRGGBB"` for `color`.
    fn paint(&mut self, name: &str, color: BackendColor) {
        self.num("opacity", color.alpha);
        self.colour(name, color);
    }

    /// `opacity`, then `fill` in `color` without a stroke, or a stroke in
    /// `color` without a fill, as plotters writes a shape.
    fn filled_or_outlined(&mut self, color: BackendColor, fill: bool) {
        self.num("opacity", color.alpha);
        if fill {
            self.colour("fill", color);
            self.buf.push_str(" stroke=\"none\"");
        } else {
            self.buf.push_str(" fill=\"none\"");
            self.colour("stroke", color);
        }
    }

    fn colour(&mut self, name: &str, color: BackendColor) {
        let (r, g, b) = color.rgb;
        self.attr(name);
        let _ = write!(self.buf, "#{r:02X}{g:02X}{b:02X}\"");
    }

    /// `points="x,y x,y "` as plotters writes it (a space after each).
    fn points(&mut self, path: impl IntoIterator<Item = BackendCoord>) {
        self.attr("points");
        for (x, y) in path {
            let _ = write!(self.buf, "{x},{y} ");
        }
        self.buf.push('"');
    }

    fn end(&mut self) {
        self.buf.push_str("/>\n");
    }
}

/// plotters-svg's escaping of attribute values and text.
fn escape(buf: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '<' => buf.push_str("&lt;"),
            '>' => buf.push_str("&gt;"),
            '&' => buf.push_str("&amp;"),
            '"' => buf.push_str("&quot;"),
            '\'' => buf.push_str("&apos;"),
            other => buf.push(other),
        }
    }
}

impl DrawingBackend for Svg<'_> {
    type ErrorType = std::io::Error;

    fn get_size(&self) -> (u32, u32) {
        self.size
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        Ok(())
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        if !self.closed {
            self.buf.push_str("</svg>\n");
            self.closed = true;
        }
        Ok(())
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        if color.alpha == 0.0 {
            return Ok(());
        }
        self.buf.push_str("<rect");
        self.num("x", point.0);
        self.num("y", point.1);
        self.buf
            .push_str(" width=\"1\" height=\"1\" stroke=\"none\"");
        self.paint("fill", color);
        self.end();
        Ok(())
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        self.buf.push_str("<line");
        self.paint("stroke", color);
        self.num("stroke-width", style.stroke_width());
        self.num("x1", from.0);
        self.num("y1", from.1);
        self.num("x2", to.0);
        self.num("y2", to.1);
        self.end();
        Ok(())
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        self.buf.push_str("<rect");
        self.num("x", upper_left.0);
        self.num("y", upper_left.1);
        self.num("width", bottom_right.0 - upper_left.0);
        self.num("height", bottom_right.1 - upper_left.1);
        self.filled_or_outlined(color, fill);
        self.end();
        Ok(())
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        self.buf.push_str("<polyline fill=\"none\"");
        self.paint("stroke", color);
        self.num("stroke-width", style.stroke_width());
        self.points(path);
        self.end();
        Ok(())
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        self.buf.push_str("<polygon");
        self.paint("fill", color);
        self.points(path);
        self.end();
        Ok(())
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        self.buf.push_str("<circle");
        self.num("cx", center.0);
        self.num("cy", center.1);
        self.num("r", radius);
        self.filled_or_outlined(color, fill);
        self.num("stroke-width", style.stroke_width());
        self.end();
        Ok(())
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (x, y) = pos;
        let anchor = match style.anchor().h_pos {
            HPos::Left => "start",
            HPos::Right => "end",
            HPos::Center => "middle",
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => "0.76em",
            VPos::Center => "0.5ex",
            VPos::Bottom => "-0.5ex",
        };
        self.buf.push_str("<text");
        self.num("x", x);
        self.num("y", y);
        self.text_attr("dy", dy);
        self.text_attr("text-anchor", anchor);
        self.text_attr("font-family", style.family().as_str());
        self.num("font-size", style.size() / 1.24);
        self.paint("fill", color);
        match style.style() {
            FontStyle::Normal => {}
            FontStyle::Bold => self.text_attr("font-weight", "bold"),
            other => self.text_attr("font-style", other.as_str()),
        }
        let turn = match style.transform() {
            FontTransform::Rotate90 => Some(90),
            FontTransform::Rotate180 => Some(180),
            FontTransform::Rotate270 => Some(270),
            _ => None,
        };
        if let Some(deg) = turn {
            self.attr("transform");
            let _ = write!(self.buf, "rotate({deg}, {x}, {y})\"");
        }
        self.buf.push_str(">\n");
        escape(self.buf, text);
        self.buf.push_str("\n</text>\n");
        Ok(())
    }
}

impl Drop for Svg<'_> {
    fn drop(&mut self) {
        let _ = self.present();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::coord::Shift;
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    /// A chart using every primitive the report draws, and some it might:
    /// grid, labels (rotated, anchored every way, with characters to
    /// escape), lines solid and dashed, markers, filled and hollow shapes,
    /// a legend on a translucent box, pixels, a fully transparent line.
    fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>) {
        root.fill(&WHITE).unwrap();
        let (top, bottom) = root.split_vertically(200);
        let mut c = ChartBuilder::on(&top)
            .caption("a <chart> & \"its\" 'title'", ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(62)
            .build_cartesian_2d(-1.5f64..10.25, 0.0f64..3.0)
            .unwrap();
        c.configure_mesh()
            .x_desc("latency (ms)")
            .y_desc("requests ≤ latency")
            .x_labels(8)
            .y_labels(4)
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()
            .unwrap();
        let pts: Vec<(f64, f64)> = (0..40)
            .map(|i| (i as f64 / 4.0, (i as f64 / 7.0).sin() + 1.5))
            .collect();
        let style = ShapeStyle::from(RGBColor(0, 0x72, 0xB2)).stroke_width(2);
        c.draw_series(LineSeries::new(pts.iter().copied(), style))
            .unwrap()
            .label("solid")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        c.draw_series(DashedLineSeries::new(
            pts.iter().map(|&(x, y)| (x, y / 2.0)),
            8,
            4,
            style,
        ))
        .unwrap()
        .label("dashed & <marked>");
        let filled = ShapeStyle::from(RGBColor(0xD5, 0x5E, 0).mix(0.75)).filled();
        c.draw_series(pts.iter().step_by(5).map(|&p| {
            EmptyElement::at(p)
                + Polygon::new(vec![(0, -5), (5, 4), (-5, 4)], filled)
                + Circle::new((0, 0), 3, style)
                + Circle::new((6, 0), 2, filled)
                + Rectangle::new([(-3, -3), (3, 3)], style)
        }))
        .unwrap();
        c.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (1.0, 1.0)],
            BLACK.mix(0.0),
        )))
        .unwrap();
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .label_font(("sans-serif", 13))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .unwrap();
        for (i, (h, v)) in [
            (HPos::Left, VPos::Top),
            (HPos::Center, VPos::Center),
            (HPos::Right, VPos::Bottom),
        ]
        .into_iter()
        .enumerate()
        {
            let font = ("serif", 11.5)
                .into_font()
                .style(if i == 1 {
                    FontStyle::Bold
                } else {
                    FontStyle::Italic
                })
                .transform(if i == 2 {
                    FontTransform::Rotate90
                } else {
                    FontTransform::Rotate180
                })
                .color(&RGBColor(0x44, 0x01, 0x54).mix(0.5))
                .pos(Pos::new(h, v));
            bottom
                .draw_text("it's <50%> & \"more\"", &font, (40 + 60 * i as i32, 40))
                .unwrap();
        }
        bottom.draw_pixel((3, 4), &RED).unwrap();
        bottom
            .draw(&Rectangle::new(
                [(100, 10), (160, 60)],
                RGBColor(0x35, 0xb7, 0x79).filled(),
            ))
            .unwrap();
        root.present().unwrap();
    }

    #[test]
    fn writes_what_plotters_svg_backend_writes() {
        let size = (660, 330);
        let mut theirs = String::new();
        draw(&SVGBackend::with_string(&mut theirs, size).into_drawing_area());
        let mut ours = String::new();
        draw(&Svg::with_string(&mut ours, size).into_drawing_area());
        assert!(theirs.matches("<line").count() > 50, "{theirs}");
        for tag in [
            "<polyline",
            "<polygon",
            "<circle",
            "<rect",
            "<text",
            "rotate(",
            "&lt;",
        ] {
            assert!(
                theirs.contains(tag),
                "{tag} not drawn: the test covers less than it says"
            );
        }
        assert_eq!(ours, theirs);
    }
}
