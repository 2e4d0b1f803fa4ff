//! `shmproc plot`: draws the figures `cargo bench --bench scale` writes
//! (`target/shmproc-scale.csv`) as two SVG plots: time and context
//! switches per item against the number of processes on one queue, joinable
//! queue or pipe end, and of workers of one pool or clients of one manager;
//! and resident bytes and descriptors per object against the number of
//! objects, shmproc's beside Python's.
//!
//! The file has a header line and then rows of
//! `part,what,n,shmproc_a,shmproc_b,python_a,python_b`, where `part` is
//! `scale` (`what`: `producers` / `consumers` / `joinable` / `pipe` /
//! `pool` / `manager`; a, b: seconds and
//! context switches per item) or `objects` (`what`: `value` / `lock`; a,
//! b: bytes and descriptors per object); an empty field is a missing
//! figure.

use std::path::Path;

use plotters::style::RGBColor;

use crate::svg::{self, Panel, Series};

/// A side's two figures of a row (either may be missing).
type Pair = (Option<f64>, Option<f64>);

/// One row of the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) part: String,
    pub(crate) what: String,
    pub(crate) n: f64,
    pub(crate) shmproc: Pair,
    pub(crate) python: Pair,
}

/// Parses the file's text; a malformed line is an error naming it.
pub(crate) fn parse(text: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = || format!("line {}: expected part,what,n,a,b,python_a,python_b: {line:?}", i + 1);
        if f.len() != 7 {
            return Err(bad());
        }
        let num = |s: &str| if s.is_empty() { Ok(None) } else { s.parse::<f64>().map(Some).map_err(|_| bad()) };
        rows.push(Row {
            part: f[0].to_owned(),
            what: f[1].to_owned(),
            n: f[2].parse().map_err(|_| bad())?,
            shmproc: (num(f[3])?, num(f[4])?),
            python: (num(f[5])?, num(f[6])?),
        });
    }
    Ok(rows)
}

/// shmproc's lines in warm colours, Python's in cool ones, one per `what`.
const SHMPROC_COLORS: [RGBColor; 6] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x7f, 0x3c, 0x3c),
];
const PYTHON_COLORS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x39, 0x3b, 0x79),
    RGBColor(0x52, 0x9e, 0x7a),
];

/// The lines of one panel: for each `what` of `part`, shmproc's and
/// Python's values picked by `pick` (from the (a, b) pair) and scaled.
fn lines(rows: &[Row], part: &str, whats: &[&str], pick: fn(Pair) -> Option<f64>, scale: f64) -> Vec<Series> {
    let mut out = Vec::new();
    for (side, colors) in [("shmproc", SHMPROC_COLORS), ("Python", PYTHON_COLORS)] {
        for (k, what) in whats.iter().enumerate() {
            let points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.part == part && r.what == *what)
                .filter_map(|r| {
                    let pair = if side == "shmproc" { r.shmproc } else { r.python };
                    Some((r.n, pick(pair)? * scale))
                })
                .collect();
            if !points.is_empty() {
                out.push(Series { label: format!("{side} {what}"), color: colors[k % colors.len()], points });
            }
        }
    }
    out
}

/// The two plots of `rows`: (scale, objects).
pub(crate) fn panels(rows: &[Row]) -> (Vec<Panel>, Vec<Panel>) {
    let channels: &[&str] = &["producers", "consumers", "joinable", "pipe"];
    let servers: &[&str] = &["pool", "manager"];
    let scale: Vec<&str> = channels.iter().chain(servers).copied().collect();
    let objects: &[&str] = &["value", "lock"];
    (
        vec![
            Panel {
                title: "One queue or pipe end: N producers, consumers, senders".into(),
                x_label: "N processes".into(),
                y_label: "ns per item".into(),
                series: lines(rows, "scale", channels, |p| p.0, 1e9),
            },
            Panel {
                title: "N pool workers (one task per item), N manager clients".into(),
                x_label: "N processes".into(),
                y_label: "ns per item (task, request)".into(),
                series: lines(rows, "scale", servers, |p| p.0, 1e9),
            },
            Panel {
                title: "Context switches (whole machine)".into(),
                x_label: "N processes".into(),
                y_label: "context switches per item".into(),
                series: lines(rows, "scale", &scale, |p| p.1, 1.0),
            },
        ],
        vec![
            Panel {
                title: "Memory per object".into(),
                x_label: "objects".into(),
                y_label: "resident bytes per object".into(),
                series: lines(rows, "objects", objects, |p| p.0, 1.0),
            },
            Panel {
                title: "Descriptors per object".into(),
                x_label: "objects".into(),
                y_label: "open descriptors per object".into(),
                series: lines(rows, "objects", objects, |p| p.1, 1.0),
            },
        ],
    )
}

/// Reads `csv` and writes the two plots.
pub(crate) fn run(csv: &Path, scale_svg: &Path, objects_svg: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(csv).map_err(|e| format!("{}: {e}", csv.display()))?;
    let rows = parse(&text)?;
    let (scale, objects) = panels(&rows);
    for (path, panels) in [(scale_svg, &scale), (objects_svg, &objects)] {
        let doc = svg::render(panels).map_err(|e| e.to_string())?;
        std::fs::write(path, doc).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("plot written to {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "part,what,n,shmproc_a,shmproc_b,python_a,python_b\n\
        scale,producers,2,2.5e-7,0.02,5e-6,0.17\n\
        scale,consumers,2,2.1e-7,0.01,,\n\
        objects,value,100,64,0.01,7000,0.02\n";

    #[test]
    fn rows_parse_with_missing_figures() {
        let rows = parse(CSV).expect("parse");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].python, (None, None));
        assert_eq!(rows[0].shmproc, (Some(2.5e-7), Some(0.02)));
        assert!(parse("header\nscale,producers,x,1,2,3,4\n").expect_err("bad n").contains("line 2"));
        assert!(parse("header\nscale,producers\n").is_err());
    }

    #[test]
    fn panels_hold_both_sides() {
        let rows = parse(CSV).expect("parse");
        let (scale, objects) = panels(&rows);
        let labels: Vec<&str> = scale[0].series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["shmproc producers", "shmproc consumers", "Python producers"]);
        assert_eq!(scale[0].series[0].points, [(2.0, 250.0)]);
        assert_eq!(objects[1].series.len(), 2);
        assert_eq!(scale.len(), 3, "channels, servers, context switches");
        assert!(scale[1].series.is_empty(), "no pool or manager rows in this file");
    }
}
