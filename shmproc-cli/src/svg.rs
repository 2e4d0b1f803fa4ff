//! A small SVG writer for the bench plot: panels of lines over log-log
//! axes with decade grid lines, tick labels and a legend. No dependency.

use std::fmt::Write as _;

/// One line of a panel: a label, a colour and `(x, y)` points (x and y > 0).
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) color: &'static str,
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

const PANEL_W: f64 = 460.0;
const PANEL_H: f64 = 340.0;
const MARGIN_L: f64 = 70.0;
const MARGIN_R: f64 = 20.0;
const MARGIN_T: f64 = 40.0;
const MARGIN_B: f64 = 50.0;

/// Escapes text for an SVG text node or attribute.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The decade range `[10^lo, 10^hi]` that covers every positive value
/// (a decade around a single value; `(0, 1)` when there is none).
pub(crate) fn decades(values: impl Iterator<Item = f64>) -> (i32, i32) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
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

/// Maps `v` on a log axis of decades `[lo, hi]` onto `[from, to]` pixels.
pub(crate) fn log_pos(v: f64, (lo, hi): (i32, i32), from: f64, to: f64) -> f64 {
    let t = (v.max(f64::MIN_POSITIVE).log10() - f64::from(lo)) / f64::from(hi - lo);
    from + t.clamp(0.0, 1.0) * (to - from)
}

/// A value at a decade, in engineering style: 1, 10, 100, 1k, ... 1µ.
fn decade_label(d: i32) -> String {
    const PREFIX: [(i32, &str); 7] = [(-9, "n"), (-6, "µ"), (-3, "m"), (0, ""), (3, "k"), (6, "M"), (9, "G")];
    let (base, p) = PREFIX.iter().rev().find(|(b, _)| d >= *b).copied().unwrap_or((-9, "n"));
    format!("{}{p}", 10u64.pow((d - base).clamp(0, 2) as u32))
}

fn panel(out: &mut String, p: &Panel, x0: f64) {
    let (l, r) = (x0 + MARGIN_L, x0 + PANEL_W - MARGIN_R);
    let (t, b) = (MARGIN_T, PANEL_H - MARGIN_B);
    let xd = decades(p.series.iter().flat_map(|s| s.points.iter().map(|pt| pt.0)));
    let yd = decades(p.series.iter().flat_map(|s| s.points.iter().map(|pt| pt.1)));
    let _ = writeln!(out, r#"<g class="panel">"#);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        (l + r) / 2.0,
        escape(&p.title)
    );
    for d in xd.0..=xd.1 {
        let x = log_pos(10f64.powi(d), xd, l, r);
        let _ = writeln!(out, r##"<line x1="{x:.1}" y1="{t:.1}" x2="{x:.1}" y2="{b:.1}" stroke="#ddd"/>"##);
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
            b + 15.0,
            decade_label(d)
        );
    }
    for d in yd.0..=yd.1 {
        let y = log_pos(10f64.powi(d), yd, b, t);
        let _ = writeln!(out, r##"<line x1="{l:.1}" y1="{y:.1}" x2="{r:.1}" y2="{y:.1}" stroke="#ddd"/>"##);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"#,
            l - 5.0,
            y + 4.0,
            decade_label(d)
        );
    }
    let _ = writeln!(
        out,
        r#"<rect x="{l:.1}" y="{t:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="black"/>"#,
        r - l,
        b - t
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">{}</text>"#,
        (l + r) / 2.0,
        PANEL_H - 12.0,
        escape(&p.x_label)
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
        x0 + 16.0,
        (t + b) / 2.0,
        x0 + 16.0,
        (t + b) / 2.0,
        escape(&p.y_label)
    );
    for (i, s) in p.series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| *x > 0.0 && *y > 0.0 && x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", log_pos(x, xd, l, r), log_pos(y, yd, b, t)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            s.color,
            pts.join(" "),
            escape(&s.label)
        );
        for pt in &pts {
            let (cx, cy) = pt.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(out, r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{}"/>"#, s.color);
        }
        let ly = t + 14.0 + 16.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"/>"#,
            l + 8.0,
            l + 28.0,
            s.color
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            l + 32.0,
            ly + 4.0,
            escape(&s.label)
        );
    }
    let _ = writeln!(out, "</g>");
}

/// A complete SVG document with `panels` side by side.
pub(crate) fn render(panels: &[Panel]) -> String {
    let w = PANEL_W * panels.len().max(1) as f64;
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{PANEL_H:.0}" viewBox="0 0 {w:.0} {PANEL_H:.0}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, p) in panels.iter().enumerate() {
        panel(&mut out, p, PANEL_W * i as f64);
    }
    out.push_str("</svg>\n");
    out
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
                Series { label: "a\"b".into(), color: "#1f77b4", points: points.clone() },
                Series { label: "c".into(), color: "#ff7f0e", points },
            ],
        }
    }

    #[test]
    fn log_axes() {
        assert_eq!(decades([64.0, 1048576.0].into_iter()), (1, 7));
        assert_eq!(decades([5.0].into_iter()), (0, 1));
        assert_eq!(decades(std::iter::empty()), (0, 1));
        assert_eq!(decades([0.0, -1.0, f64::NAN].into_iter()), (0, 1));
        assert!((log_pos(100.0, (1, 3), 0.0, 100.0) - 50.0).abs() < 1e-9);
        assert_eq!(log_pos(1e9, (1, 3), 0.0, 100.0), 100.0, "clamped");
        assert_eq!(log_pos(0.0, (1, 3), 0.0, 100.0), 0.0, "clamped");
        assert_eq!(decade_label(0), "1");
        assert_eq!(decade_label(4), "10k");
        assert_eq!(decade_label(-5), "10µ");
    }

    #[test]
    fn document_is_well_formed() {
        let doc = render(&[panel_of(vec![(64.0, 10.0), (4096.0, 300.0)]), panel_of(vec![])]);
        assert!(doc.starts_with("<?xml"));
        assert!(doc.trim_end().ends_with("</svg>"));
        assert_eq!(doc.matches("<svg ").count(), 1);
        assert_eq!(doc.matches("<g class=\"panel\">").count(), 2);
        assert_eq!(doc.matches("</g>").count(), 2);
        assert_eq!(doc.matches("<polyline").count(), 4);
        assert_eq!(doc.matches("<circle").count(), 4);
        assert!(doc.contains("T &lt;&amp;&gt;") && doc.contains("a&quot;b"));
        assert!(!doc.contains("NaN") && !doc.contains("inf"));
        // Every opened element is closed: tags balance.
        let opens = doc.matches("<text").count();
        assert_eq!(opens, doc.matches("</text>").count());
    }
}
