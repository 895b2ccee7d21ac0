//! One figure = one x-y panel with lines, dashed lines and markers, written as PNG
//! and SVG with plotters.
//!
//! Text needs no system font: a subset of DejaVu Sans (`assets/`, license alongside)
//! is compiled into the binary and registered with plotters' `ab_glyph` renderer for
//! the families `sans-serif`, `serif` and `monospace`. SVG files name `sans-serif`
//! and let the viewer pick its own font.
//!
//! Log axes are drawn as linear axes over log₁₀ of the data (non-positive values
//! dropped), ticks and labels from [`super::axis`], so that every figure has one
//! coordinate type.
//! Values outside the y range (e.g. a 2/η line far above the sharpness) are clamped
//! to its edge rather than drawn over the labels.

use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::error::Error;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{padded, Axis};

/// The embedded font (DejaVu Sans, subset; see `assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// Pixel size of every figure.
const SIZE: (u32, u32) = (960, 600);

/// Ten distinguishable colours (matplotlib's `tab10`).
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Line,
    Dashed,
    Points,
    LinePoints,
}

/// A named set of (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>, style: Style) -> Self {
        Self {
            name: name.into(),
            points,
            style,
        }
    }
}

/// A panel: title, axis labels, series, and notes printed under the title.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    pub notes: Vec<String>,
    /// Upper limit of the y axis (data units), e.g. to keep a far 2/η line in check.
    pub y_max: Option<f64>,
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            // The bytes are a valid TrueType file compiled in; failure would only
            // mean text-less plots, so it is not fatal.
            if plotters::style::register_font(family, FontStyle::Normal, FONT).is_err() {
                tracing::warn!("the embedded font could not be loaded: plots without text");
            }
        }
    });
}

impl Figure {
    /// Whether no series has a point to draw.
    pub fn is_empty(&self) -> bool {
        self.transformed().iter().all(|s| s.points.is_empty())
    }

    /// Writes `dir/stem.png` and `dir/stem.svg`; returns their paths.
    pub fn save(&self, dir: &Path, stem: &str) -> crate::Result<Vec<PathBuf>> {
        register_fonts();
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::file(dir, format!("cannot create the folder: {e}")))?;
        let png = dir.join(format!("{stem}.png"));
        let svg = dir.join(format!("{stem}.svg"));
        self.draw(BitMapBackend::new(&png, SIZE).into_drawing_area())
            .map_err(|e| Error::file(&png, e))?;
        self.draw(SVGBackend::new(&svg, SIZE).into_drawing_area())
            .map_err(|e| Error::file(&svg, e))?;
        Ok(vec![png, svg])
    }

    /// The series in plot coordinates: log₁₀ on log axes, non-finite points dropped.
    fn transformed(&self) -> Vec<Series> {
        let tx = |v: f64, log: bool| match log {
            true if v > 0.0 => Some(v.log10()),
            true => None,
            false => Some(v),
        };
        self.series
            .iter()
            .map(|s| Series {
                points: s
                    .points
                    .iter()
                    .filter_map(|&(x, y)| Some((tx(x, self.log_x)?, tx(y, self.log_y)?)))
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .collect(),
                ..s.clone()
            })
            .collect()
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(err)?;
        let series = self.transformed();
        let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.clone()).collect();
        let (x0, x1) = padded(all.iter().map(|p| p.0), self.log_x);
        let y_cap = self.y_max.and_then(|m| {
            if self.log_y {
                (m > 0.0).then(|| m.log10())
            } else {
                Some(m)
            }
        });
        let ys = all
            .iter()
            .map(|p| p.1)
            .map(|y| y_cap.map_or(y, |c| y.min(c)));
        let (y0, y1) = padded(ys, self.log_y);

        let header = 44 + 22 * self.notes.len() as u32;
        let (top, body) = root.split_vertically(header);
        top.draw(&Text::new(
            self.title.clone(),
            (20, 8),
            ("sans-serif", 24).into_font(),
        ))
        .map_err(err)?;
        for (i, note) in self.notes.iter().enumerate() {
            let pos = (20, 40 + 22 * i as i32);
            top.draw(&Text::new(
                note.clone(),
                pos,
                ("sans-serif", 17).into_font(),
            ))
            .map_err(err)?;
        }

        let xr = Axis::new(x0, x1, self.log_x);
        let yr = Axis::new(y0, y1, self.log_y);
        let mut chart = ChartBuilder::on(&body)
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(xr, yr)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()
            .map_err(err)?;

        let clamp = |(x, y): (f64, f64)| (x, y.clamp(y0, y1));
        for (i, s) in series
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.points.is_empty())
        {
            let color = COLORS[i % COLORS.len()];
            let pts: Vec<(f64, f64)> = s.points.iter().copied().map(clamp).collect();
            let line = ShapeStyle::from(&color).stroke_width(2);
            let anno = match s.style {
                Style::Line => chart.draw_series(LineSeries::new(pts, line)),
                Style::LinePoints => chart.draw_series(LineSeries::new(pts, line).point_size(3)),
                Style::Dashed => chart.draw_series(DashedLineSeries::new(pts, 8, 6, line)),
                Style::Points => {
                    chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                }
            }
            .map_err(err)?;
            anno.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
        if series.iter().filter(|s| !s.points.is_empty()).count() > 1
            || series
                .iter()
                .any(|s| !s.name.is_empty() && !s.points.is_empty())
        {
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 15))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .position(legend_corner(&series, (x0, x1), (y0, y1)))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)
    }
}

/// The corner of the plot with the fewest points near it (ties: upper right).
fn legend_corner(series: &[Series], x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
    let (w, h) = (x.1 - x.0, y.1 - y.0);
    let count = |right: bool, upper: bool| {
        let near = |p: &&(f64, f64)| {
            let fx = (p.0 - x.0) / w;
            let fy = (p.1 - y.0) / h;
            (if right { fx > 0.6 } else { fx < 0.4 }) && (if upper { fy > 0.65 } else { fy < 0.35 })
        };
        series
            .iter()
            .map(|s| s.points.iter().filter(near).count())
            .sum::<usize>()
    };
    let corners = [
        (true, true, SeriesLabelPosition::UpperRight),
        (false, true, SeriesLabelPosition::UpperLeft),
        (true, false, SeriesLabelPosition::LowerRight),
        (false, false, SeriesLabelPosition::LowerLeft),
    ];
    let mut best = (usize::MAX, SeriesLabelPosition::UpperRight);
    for (r, u, pos) in corners {
        let c = count(r, u);
        if c < best.0 {
            best = (c, pos);
        }
    }
    best.1
}
