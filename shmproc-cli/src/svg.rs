//! The bench plot, drawn with plotters' SVG backend: panels side by side,
//! each a set of lines with point markers over log-log axes, a grid at every
//! decade (lighter lines between), engineering tick labels and a legend.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

/// One line of a panel: a label, a colour and `(x, y)` points. Points that
/// a log axis cannot show (zero, negative, not finite) are left out.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) color: RGBColor,
    pub(crate) points: Vec<(f64, f64)>,
}

/// One plot: a title, axis labels and its lines.
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    pub(crate) title: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    pub(crate) series: Vec<Series>,
}

/// The size of one panel, in pixels.
const PANEL: (u32, u32) = (480, 360);
const FONT: &str = "sans-serif";

/// The decade range `[10^lo, 10^hi]` that covers every positive value
/// (a decade around a single value; `(0, 1)` when there is none).
pub(crate) fn decades(values: impl Iterator<Item = f64>) -> (i32, i32) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| plottable(*v)) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0, 1);
    }
    let (a, mut b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    if b <= a {
        b = a + 1;
    }
    (a, b)
}

fn plottable(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// A tick value in engineering style, at most three significant digits:
/// 1, 20, 300, 1k, 2.5M, 10µ, 100m.
pub(crate) fn tick_label(v: f64) -> String {
    const PREFIX: [(i32, &str); 7] = [(-9, "n"), (-6, "µ"), (-3, "m"), (0, ""), (3, "k"), (6, "M"), (9, "G")];
    if !plottable(v) {
        return "0".to_owned();
    }
    // The exponent of the leading digit, nudged so 1000 is 1k, not 1000.
    let exp = (v.log10() + 1e-9).floor() as i32;
    let (base, prefix) = PREFIX.iter().rev().find(|(b, _)| exp >= *b).copied().unwrap_or(PREFIX[0]);
    let m = v / 10f64.powi(base);
    let text = match m {
        m if m >= 100.0 => format!("{m:.0}"),
        m if m >= 10.0 => format!("{m:.1}"),
        m => format!("{m:.2}"),
    };
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    format!("{text}{prefix}")
}

fn to_plot_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("cannot draw the plot: {e}"))
}

fn decade_range((lo, hi): (i32, i32)) -> Range<f64> {
    10f64.powi(lo)..10f64.powi(hi)
}

fn panel(area: &DrawingArea<SVGBackend<'_>, Shift>, p: &Panel) -> std::io::Result<()> {
    let points = |s: &Series| -> Vec<(f64, f64)> {
        s.points.iter().copied().filter(|&(x, y)| plottable(x) && plottable(y)).collect()
    };
    let xd = decades(p.series.iter().flat_map(points).map(|pt| pt.0));
    let yd = decades(p.series.iter().flat_map(points).map(|pt| pt.1));
    let (x_range, y_range) = (decade_range(xd), decade_range(yd));
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 18).into_font().style(FontStyle::Bold))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(52)
        .build_cartesian_2d(x_range.clone().log_scale(), y_range.clone().log_scale())
        .map_err(to_plot_error)?;
    // Axis lines and tick marks are left out (transparent: not drawn); a
    // frame and the grid stand in for them, as in a plain log-log chart.
    chart
        .configure_mesh()
        .x_labels(usize::try_from(xd.1 - xd.0).unwrap_or(1) + 1)
        .y_labels(usize::try_from(yd.1 - yd.0).unwrap_or(1) + 1)
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .bold_line_style(BLACK.mix(0.15))
        .light_line_style(BLACK.mix(0.05))
        .axis_style(TRANSPARENT)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .draw()
        .map_err(to_plot_error)?;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(x_range.start, y_range.start), (x_range.end, y_range.end)],
            BLACK.stroke_width(1),
        )))
        .map_err(to_plot_error)?;
    for s in &p.series {
        let color = s.color;
        chart
            // Filled: the markers are filled; the line is a 2-pixel stroke.
            .draw_series(LineSeries::new(points(s), color.filled().stroke_width(2)).point_size(3))
            .map_err(to_plot_error)?
            .label(s.label.as_str())
            // A short bar of the line's colour (a rectangle, so the plot's
            // only polylines are the series).
            .legend(move |(x, y)| Rectangle::new([(x, y - 1), (x + 18, y + 1)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(to_plot_error)?;
    Ok(())
}

/// A complete SVG document (with its XML declaration) with `panels` side
/// by side.
pub(crate) fn render(panels: &[Panel]) -> std::io::Result<String> {
    let columns = u32::try_from(panels.len().max(1)).unwrap_or(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (PANEL.0 * columns, PANEL.1)).into_drawing_area();
        root.fill(&WHITE).map_err(to_plot_error)?;
        let areas = root.split_evenly((1, columns as usize));
        for (area, p) in areas.iter().zip(panels) {
            panel(area, p)?;
        }
        root.present().map_err(to_plot_error)?;
    }
    Ok(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{svg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panel_of(points: Vec<(f64, f64)>) -> Panel {
        Panel {
            title: "T <&>".into(),
            x_label: "bytes".into(),
            y_label: "MB/s".into(),
            series: vec![
                Series { label: "a\"b".into(), color: RGBColor(0x1f, 0x77, 0xb4), points: points.clone() },
                Series { label: "c".into(), color: RGBColor(0xff, 0x7f, 0x0e), points },
            ],
        }
    }

    #[test]
    fn log_axes() {
        assert_eq!(decades([64.0, 1048576.0].into_iter()), (1, 7));
        assert_eq!(decades([5.0].into_iter()), (0, 1));
        assert_eq!(decades(std::iter::empty()), (0, 1));
        assert_eq!(decades([0.0, -1.0, f64::NAN].into_iter()), (0, 1));
        assert_eq!(decade_range((1, 3)), 10.0..1000.0);
    }

    #[test]
    fn tick_labels() {
        for (v, text) in [
            (1.0, "1"),
            (10.0, "10"),
            (100.0, "100"),
            (1000.0, "1k"),
            (1e4, "10k"),
            (1e6, "1M"),
            (3e7, "30M"),
            (2500.0, "2.5k"),
            (1e-5, "10µ"),
            (0.1, "100m"),
            (0.0, "0"),
        ] {
            assert_eq!(tick_label(v), text, "{v}");
        }
    }

    #[test]
    fn document_is_well_formed() {
        let points = vec![(64.0, 10.0), (4096.0, 300.0), (0.0, 5.0), (8192.0, f64::NAN)];
        let doc = render(&[panel_of(points), panel_of(vec![])]).expect("render");
        assert!(doc.starts_with("<?xml"));
        assert!(doc.trim_end().ends_with("</svg>"));
        assert_eq!(doc.matches("<svg ").count(), 1);
        // Two series with two plottable points each; the empty panel adds none.
        let lines: Vec<&str> = doc.split("<polyline").skip(1).collect();
        assert_eq!(lines.len(), 2, "{doc}");
        for l in lines {
            let pts = l.split("points=\"").nth(1).and_then(|p| p.split('"').next()).expect("points");
            assert_eq!(pts.split_whitespace().count(), 2, "{pts}");
        }
        assert_eq!(doc.matches("<circle").count(), 4);
        assert!(doc.contains("T &lt;&amp;&gt;") && doc.contains("a&quot;b"));
        assert!(!doc.contains("NaN") && !doc.contains("inf"));
        // Every opened text element is closed.
        assert_eq!(doc.matches("<text").count(), doc.matches("</text>").count());
        assert!(doc.contains("font-family=\"sans-serif\""));
    }
}
