//! Charts as inline SVG, drawn with plotters (through `svg.rs`, which writes
//! what plotters' own SVG backend writes, more cheaply): x/y line and
//! point charts (time series, CDFs with a log-scaled tail), dot charts with
//! confidence intervals and stacked mix bars. Series are told apart by an
//! Okabe–Ito colour, a marker and a dash pattern, so they survive greyscale
//! printing and colour-blind eyes.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::svg::Svg;

/// Okabe & Ito's colour-blind safe palette (yellow left out: it vanishes on
/// white), most distinct first.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x00, 0x00, 0x00), // black
];

/// Colours of categories in stacked bars (viridis steps: they differ in
/// lightness, so neighbours stay apart in greyscale), with the ink that
/// reads on each.
const CATEGORY: [(RGBColor, RGBColor); 6] = [
    (RGBColor(0x44, 0x01, 0x54), WHITE),
    (RGBColor(0x31, 0x68, 0x8e), WHITE),
    (RGBColor(0x35, 0xb7, 0x79), BLACK),
    (RGBColor(0xfd, 0xe7, 0x25), BLACK),
    (RGBColor(0x90, 0x90, 0x90), BLACK),
    (RGBColor(0xd0, 0xd0, 0xd0), BLACK),
];

/// `#rrggbb` of category `i` of a stacked bar.
pub fn category_hex(i: usize) -> String {
    let RGBColor(r, g, b) = CATEGORY[i % CATEGORY.len()].0;
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Colour of series `i`.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// `#rrggbb` of series `i`, for HTML legends and tables.
pub fn colour_hex(i: usize) -> String {
    let RGBColor(r, g, b) = colour(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

const FONT: &str = "sans-serif";
pub const WIDTH: u32 = 660;
pub const HEIGHT: u32 = 330;
/// Pixel columns of a plot: time series keep at most two points per column.
pub const PLOT_COLUMNS: usize = 540;

/// How an axis maps data values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    Linear,
    /// Base-10 logarithm (values ≤ 0 are left out).
    Log,
    /// Cumulative fractions with the tail stretched: `−log10(1 − F)`, so 90 %,
    /// 99 % and 99.9 % sit one step apart. Labelled in percent.
    Tail,
}

impl Scale {
    fn map(self, v: f64) -> Option<f64> {
        match self {
            Scale::Linear => v.is_finite().then_some(v),
            Scale::Log => (v > 0.0 && v.is_finite()).then(|| v.log10()),
            Scale::Tail => (v.is_finite() && v < 1.0).then(|| -(1.0 - v.max(0.0)).log10()),
        }
    }

    fn label(self, t: f64) -> String {
        match self {
            Scale::Linear => number(t),
            Scale::Log => number(10f64.powf(t)),
            Scale::Tail => {
                let p = 100.0 * (1.0 - 10f64.powf(-t));
                let digits = (t.ceil() as usize).saturating_sub(2).min(6);
                format!("{p:.digits$}%")
            }
        }
    }
}

/// A tick label: short, no needless decimals.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        trim(format!("{v:.2}"))
    } else {
        trim(format!("{v:.3}"))
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Draw {
    /// A line with a few markers on it (to tell series apart in greyscale).
    Line,
    /// One marker per point.
    Points,
}

/// One series: its legend label, its style index and its points in data units.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub style: usize,
    pub draw: Draw,
    pub points: Vec<(f64, f64)>,
}

/// Marks along the x axis (lost datagrams), in the series' style.
#[derive(Debug, Clone)]
pub struct AxisMarks {
    pub style: usize,
    pub xs: Vec<f64>,
}

/// An x/y chart.
#[derive(Debug, Clone)]
pub struct XyChart {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x_scale: Scale,
    pub y_scale: Scale,
    /// Start the y axis at zero (linear scales of non-negative values).
    pub y_from_zero: bool,
    pub series: Vec<Series>,
    pub marks: Vec<AxisMarks>,
    /// Where the legend goes: the corner the data leaves free.
    pub legend: Corner,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Corner {
    UpperLeft,
    UpperRight,
    LowerRight,
}

type Area<'a> = DrawingArea<Svg<'a>, Shift>;

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("cannot draw a chart: {e}")
}

/// Draws `draw` on a white SVG canvas and returns the `<svg>` element.
fn canvas(
    title: &str,
    size: (u32, u32),
    draw: impl FnOnce(&Area) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = Svg::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(inline(&svg, title))
}

/// Makes plotters' standalone SVG an inline one: no `xmlns` (HTML puts an
/// inline `<svg>` in the SVG namespace by itself, and the report then holds
/// no URL at all), scalable, and labelled for screen readers.
fn inline(svg: &str, title: &str) -> String {
    let svg = svg.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1);
    let title = super::page::escape(title);
    match svg.find('>') {
        Some(end) if svg.starts_with("<svg") => format!(
            "{} role=\"img\" aria-label=\"{title}\"><title>{title}</title>{}",
            &svg[..end],
            &svg[end + 1..]
        ),
        _ => svg,
    }
}

/// Data range of one axis after scaling, padded so points do not sit on the frame.
fn range(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    if hi - lo < 1e-9 {
        hi = lo + lo.abs().max(1.0) * 0.5;
        if !from_zero {
            lo -= lo.abs().max(1.0) * 0.5;
        }
    }
    let pad = (hi - lo) * 0.04;
    (if from_zero && lo >= 0.0 { lo } else { lo - pad }, hi + pad)
}

/// Dash pattern of series `i` (dash, gap in pixels); `None` is solid.
fn dash(i: usize) -> Option<(u32, u32)> {
    match (i / PALETTE.len() + i) % 3 {
        0 => None,
        1 => Some((8, 4)),
        _ => Some((2, 3)),
    }
}

/// Marker `i % 4` (disc, triangle, square, cross) around a pixel position,
/// as one polygon type so every marker composes with any element.
fn marker(i: usize, at: (i32, i32), style: ShapeStyle) -> Polygon<(i32, i32)> {
    let (x, y) = at;
    let pts: Vec<(i32, i32)> = match i % 4 {
        0 => (0..10)
            .map(|k| {
                let a = k as f64 * std::f64::consts::TAU / 10.0;
                (
                    x + (3.6 * a.cos()).round() as i32,
                    y + (3.6 * a.sin()).round() as i32,
                )
            })
            .collect(),
        1 => vec![(x, y - 5), (x + 5, y + 4), (x - 5, y + 4)],
        2 => vec![
            (x - 3, y - 3),
            (x + 3, y - 3),
            (x + 3, y + 3),
            (x - 3, y + 3),
        ],
        _ => vec![
            (x - 4, y - 5),
            (x, y - 1),
            (x + 4, y - 5),
            (x + 5, y - 4),
            (x + 1, y),
            (x + 5, y + 4),
            (x + 4, y + 5),
            (x, y + 1),
            (x - 4, y + 5),
            (x - 5, y + 4),
            (x - 1, y),
            (x - 5, y - 4),
        ],
    };
    Polygon::new(pts, style.filled())
}

/// The coordinates of an x/y chart (data already scaled).
type XyContext<'a, 'b> = ChartContext<'a, Svg<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws one series: markers, or a line (solid, dashed or dotted) with a
/// few markers on it, and its legend entry.
fn draw_series<'a, 'b: 'a>(
    c: &mut XyContext<'a, 'b>,
    s: &Series,
    pts: &[(f64, f64)],
) -> anyhow::Result<()> {
    let style = ShapeStyle::from(colour(s.style)).stroke_width(2);
    let i = s.style;
    let anno = match s.draw {
        Draw::Points => {
            let filled = ShapeStyle::from(colour(i).mix(0.75)).filled();
            c.draw_series(
                pts.iter()
                    .map(move |&p| EmptyElement::at(p) + marker(i, (0, 0), filled)),
            )
            .map_err(err)?
        }
        Draw::Line => {
            match dash(i) {
                None => {
                    c.draw_series(LineSeries::new(pts.iter().copied(), style))
                        .map_err(err)?;
                }
                Some((d, g)) => {
                    c.draw_series(DashedLineSeries::new(pts.iter().copied(), d, g, style))
                        .map_err(err)?;
                }
            }
            // A few markers along the line identify it without colour.
            let step = (pts.len() / 7).max(1);
            let offset = (i * step / 3) % step;
            c.draw_series(
                pts.iter()
                    .skip(offset)
                    .step_by(step)
                    .map(move |&p| EmptyElement::at(p) + marker(i, (0, 0), style.filled())),
            )
            .map_err(err)?
        }
    };
    anno.label(s.label.as_str()).legend(move |(x, y)| {
        EmptyElement::at((x, y))
            + PathElement::new(vec![(0, 0), (18, 0)], style)
            + marker(i, (9, 0), style.filled())
    });
    Ok(())
}

/// Renders an x/y chart with a legend.
pub fn xy(chart: &XyChart) -> anyhow::Result<String> {
    let scaled: Vec<Vec<(f64, f64)>> = chart
        .series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter_map(|&(x, y)| Some((chart.x_scale.map(x)?, chart.y_scale.map(y)?)))
                .collect()
        })
        .collect();
    let xs = scaled.iter().flatten().map(|p| p.0);
    let marks_x = chart
        .marks
        .iter()
        .flat_map(|m| m.xs.iter().filter_map(|&x| chart.x_scale.map(x)));
    let (x0, x1) = range(xs.chain(marks_x), false);
    let (y0, y1) = range(
        scaled.iter().flatten().map(|p| p.1),
        chart.y_from_zero && chart.y_scale == Scale::Linear,
    );
    // A stretched tail is read at whole decades (90 %, 99 %, 99.9 %): the
    // axis runs from 0 to the decade above the largest sample.
    let (y0, y1, y_labels) = if chart.y_scale == Scale::Tail {
        let top = y1.ceil().max(1.0);
        (0.0, top, top as usize + 1)
    } else {
        (y0, y1, 7)
    };
    canvas(&chart.title, (WIDTH, HEIGHT), |root| {
        let mut c = ChartBuilder::on(root)
            .caption(&chart.title, (FONT, 17))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(62)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        let (xs, ys) = (chart.x_scale, chart.y_scale);
        let xf = move |v: &f64| xs.label(*v);
        let yf = move |v: &f64| ys.label(*v);
        c.configure_mesh()
            .x_desc(&chart.x_desc)
            .y_desc(&chart.y_desc)
            .x_labels(8)
            .y_labels(y_labels)
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(err)?;
        for (s, pts) in chart.series.iter().zip(&scaled) {
            draw_series(&mut c, s, pts)?;
        }
        for m in &chart.marks {
            let i = m.style;
            let style = ShapeStyle::from(colour(i)).stroke_width(2);
            let y = y0;
            // Short ticks standing on the x axis: one per lost datagram (or per pixel column).
            c.draw_series(
                m.xs.iter()
                    .filter_map(|&x| chart.x_scale.map(x))
                    .map(move |x| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, -2), (0, -12 - 4 * (i as i32 % 3))], style)
                    }),
            )
            .map_err(err)?;
        }
        if chart.series.iter().any(|s| !s.label.is_empty()) {
            c.configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .label_font((FONT, 13))
                .position(match chart.legend {
                    Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
                    Corner::UpperRight => SeriesLabelPosition::UpperRight,
                    Corner::LowerRight => SeriesLabelPosition::LowerRight,
                })
                .draw()
                .map_err(err)?;
        }
        Ok(())
    })
}

/// One row of a dot chart: a label, a value and its interval when known.
#[derive(Debug, Clone)]
pub struct Dot {
    pub label: String,
    pub style: usize,
    pub value: f64,
    /// 95 % confidence interval, when repetitions gave one.
    pub ci: Option<(f64, f64)>,
}

/// A horizontal dot chart: one row per series, the value as a marker and its
/// interval as a whisker. Long variant labels fit on the left.
pub fn dots(title: &str, x_desc: &str, rows: &[Dot]) -> anyhow::Result<String> {
    let n = rows.len().max(1);
    let height = 70 + 34 * n as u32;
    let label_width = rows
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(4) as u32
        * 7
        + 16;
    let values = rows
        .iter()
        .flat_map(|r| [Some(r.value), r.ci.map(|c| c.0), r.ci.map(|c| c.1)])
        .flatten();
    let (x0, x1) = range(values, true);
    canvas(title, (WIDTH / 2 - 6, height), |root| {
        let mut c = ChartBuilder::on(root)
            .caption(title, (FONT, 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(label_width.clamp(40, 200))
            .build_cartesian_2d(x0..x1, -0.5..(n as f64 - 0.5))
            .map_err(err)?;
        let names: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
        let yf = move |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let xf = |v: &f64| number(*v);
        c.configure_mesh()
            .x_desc(x_desc)
            .x_labels(5)
            .y_labels(n + 1)
            .y_label_formatter(&yf)
            .x_label_formatter(&xf)
            .disable_y_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(err)?;
        for (k, r) in rows.iter().enumerate() {
            let y = k as f64;
            let style = ShapeStyle::from(colour(r.style)).stroke_width(2);
            if let Some((lo, hi)) = r.ci {
                c.draw_series([
                    PathElement::new(vec![(lo, y), (hi, y)], style),
                    PathElement::new(vec![(lo, y - 0.18), (lo, y + 0.18)], style),
                    PathElement::new(vec![(hi, y - 0.18), (hi, y + 0.18)], style),
                ])
                .map_err(err)?;
            }
            let i = r.style;
            c.draw_series(std::iter::once(
                EmptyElement::at((r.value, y)) + marker(i, (0, 0), style.filled()),
            ))
            .map_err(err)?;
        }
        Ok(())
    })
}

/// One stacked bar: a label and the counts of each category.
#[derive(Debug, Clone)]
pub struct Stack {
    pub label: String,
    pub counts: Vec<u64>,
}

/// A 100 % stacked horizontal bar per row; categories share colours across
/// rows, carry their share as text when wide enough, and are separated by
/// white gaps so they read in greyscale too. Empty categories are left out.
pub fn stacks(title: &str, categories: &[&str], rows: &[Stack]) -> anyhow::Result<String> {
    let used: Vec<usize> = (0..categories.len())
        .filter(|&k| {
            rows.iter()
                .any(|r| r.counts.get(k).copied().unwrap_or(0) > 0)
        })
        .collect();
    let n = rows.len().max(1);
    let height = 90 + 34 * n as u32;
    let label_width = rows
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(4) as u32
        * 7
        + 16;
    canvas(title, (WIDTH / 2 - 6, height), |root| {
        let mut c = ChartBuilder::on(root)
            .caption(title, (FONT, 15))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(label_width.clamp(40, 200))
            .build_cartesian_2d(0.0..100.0, -0.5..(n as f64 - 0.5))
            .map_err(err)?;
        let names: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
        let yf = move |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let xf = |v: &f64| format!("{v:.0}%");
        c.configure_mesh()
            .x_desc("share of requests")
            .x_labels(5)
            .y_labels(n + 1)
            .y_label_formatter(&yf)
            .x_label_formatter(&xf)
            .disable_y_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(err)?;
        for (k, r) in rows.iter().enumerate() {
            let total: u64 = r.counts.iter().sum();
            if total == 0 {
                continue;
            }
            let y = k as f64;
            let mut x = 0.0;
            for &cat in &used {
                let count = r.counts.get(cat).copied().unwrap_or(0);
                if count == 0 {
                    continue;
                }
                let w = count as f64 * 100.0 / total as f64;
                let (paint, ink) = CATEGORY[cat % CATEGORY.len()];
                let fill = ShapeStyle::from(paint).filled();
                c.draw_series([
                    Rectangle::new([(x, y - 0.32), (x + w, y + 0.32)], fill),
                    Rectangle::new(
                        [(x, y - 0.32), (x + w, y + 0.32)],
                        ShapeStyle::from(WHITE).stroke_width(2),
                    ),
                ])
                .map_err(err)?;
                if w >= 12.0 {
                    let text = format!("{} {:.0}%", categories[cat], w);
                    c.draw_series(std::iter::once(Text::new(
                        text,
                        (x + 1.0, y),
                        (FONT, 11).into_font().color(&ink).pos(
                            plotters::style::text_anchor::Pos::new(
                                plotters::style::text_anchor::HPos::Left,
                                plotters::style::text_anchor::VPos::Center,
                            ),
                        ),
                    )))
                    .map_err(err)?;
                }
                x += w;
            }
        }
        Ok(())
    })
}
