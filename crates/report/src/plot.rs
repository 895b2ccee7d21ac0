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

use std::ops::RangeInclusive;
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
#[derive(Debug, Clone, PartialEq)]
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
///
/// Built with [`Figure::new`] and the setters that follow it (by value), then filled
/// with [`Figure::add`], [`Figure::hline`] and [`Figure::vline`] (by reference, so
/// that a loop can add to it):
///
/// ```
/// use eos_report::plot::{Figure, Style};
///
/// let mut fig = Figure::new("sharpness").x_label("step").y_label("λ_max").y_log();
/// fig.add("λ_max", vec![(0.0, 12.0), (10.0, 19.0)], Style::Line)
///     .hline("2/η", 20.0, 0.0..=10.0);
/// assert_eq!(fig.series[1].points, [(0.0, 20.0), (10.0, 20.0)]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// A figure with this title: linear axes, no labels, no series.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }

    /// Sets the label of the x axis.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Sets the label of the y axis.
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// A log₁₀ x axis.
    pub fn x_log(mut self) -> Self {
        self.log_x = true;
        self
    }

    /// A log₁₀ y axis.
    pub fn y_log(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// Caps the y axis at `max` (data units).
    pub fn y_max(mut self, max: f64) -> Self {
        self.y_max = Some(max);
        self
    }

    /// Adds a note line under the title (after those already there).
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Adds a series (its colour is fixed by its position, empty or not).
    pub fn add(
        &mut self,
        name: impl Into<String>,
        points: Vec<(f64, f64)>,
        style: Style,
    ) -> &mut Self {
        self.series.push(Series::new(name, points, style));
        self
    }

    /// Adds a dashed horizontal line at `y` from `x.start()` to `x.end()`.
    pub fn hline(&mut self, name: impl Into<String>, y: f64, x: RangeInclusive<f64>) -> &mut Self {
        self.add(name, vec![(*x.start(), y), (*x.end(), y)], Style::Dashed)
    }

    /// Adds a dashed vertical line at `x` from `y.start()` to `y.end()`.
    pub fn vline(&mut self, name: impl Into<String>, x: f64, y: RangeInclusive<f64>) -> &mut Self {
        self.add(name, vec![(x, *y.start()), (x, *y.end())], Style::Dashed)
    }

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

    /// The x and y ranges of the plot (y capped at `y_max`), in plot coordinates.
    fn ranges(&self, series: &[Series]) -> ((f64, f64), (f64, f64)) {
        let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.clone()).collect();
        let x = padded(all.iter().map(|p| p.0), self.log_x);
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
        (x, padded(ys, self.log_y))
    }

    /// Draws the figure on `root`: title and notes, axes, series, legend.
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let series = self.transformed();
        let (x, y) = self.ranges(&series);
        let header = 44 + 22 * self.notes.len() as u32;
        let (top, body) = root.split_vertically(header);
        self.draw_header(&top)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(
                Axis::new(x.0, x.1, self.log_x),
                Axis::new(y.0, y.1, self.log_y),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()
            .map_err(err)?;
        draw_series(&mut chart, &series, y)?;
        if has_legend(&series) {
            chart
                .configure_series_labels()
                .label_font(("sans-serif", 15))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .position(legend_corner(&series, x, y))
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)
    }

    /// The title and, one per line below it, the notes.
    fn draw_header<DB: DrawingBackend>(&self, top: &DrawingArea<DB, Shift>) -> Result<(), String> {
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
        Ok(())
    }
}

/// A drawing error as text.
fn err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// Draws every non-empty series (colour `i` for the `i`-th series, drawn or not),
/// its values clamped to the y range `y`, each with its legend entry.
fn draw_series<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<Axis, Axis>>,
    series: &[Series],
    (y0, y1): (f64, f64),
) -> Result<(), String> {
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
    Ok(())
}

/// A legend is drawn for two or more drawn series, or one with a name.
fn has_legend(series: &[Series]) -> bool {
    series.iter().filter(|s| !s.points.is_empty()).count() > 1
        || series
            .iter()
            .any(|s| !s.name.is_empty() && !s.points.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_sets_what_a_literal_sets() {
        let mut built = Figure::new("t")
            .x_label("step")
            .y_label("loss")
            .x_log()
            .y_log()
            .y_max(6.0)
            .note("a")
            .note(String::from("b"));
        built
            .add("l", vec![(1.0, 2.0)], Style::LinePoints)
            .hline("h", 2.0, 0.0..=5.0)
            .vline("v", 3.0, -1.0..=0.0);
        let literal = Figure {
            title: "t".into(),
            x_label: "step".into(),
            y_label: "loss".into(),
            log_x: true,
            log_y: true,
            series: vec![
                Series::new("l", vec![(1.0, 2.0)], Style::LinePoints),
                Series::new("h", vec![(0.0, 2.0), (5.0, 2.0)], Style::Dashed),
                Series::new("v", vec![(3.0, -1.0), (3.0, 0.0)], Style::Dashed),
            ],
            notes: vec!["a".into(), "b".into()],
            y_max: Some(6.0),
        };
        assert_eq!(built, literal);
        // Nothing set but the title: the defaults.
        let bare = Figure::new("only");
        assert!(!bare.log_x && !bare.log_y && bare.y_max.is_none());
        assert!(bare.series.is_empty() && bare.notes.is_empty() && bare.x_label.is_empty());
    }

    #[test]
    fn ranges_cap_y_and_legends_follow_the_drawn_series() {
        let mut fig = Figure::new("t").y_max(10.0);
        fig.add("", vec![(0.0, 1.0), (2.0, 100.0)], Style::Line);
        let series = fig.transformed();
        // x: 5 % padding of [0, 2]; y: capped at 10, then padded.
        let (x, y) = fig.ranges(&series);
        assert_eq!(x, (0.0 - 0.05 * 2.0, 2.0 + 0.05 * 2.0));
        assert_eq!(y, (1.0 - 0.05 * 9.0, 10.0 + 0.05 * 9.0));
        // One unnamed series: no legend; a named one, or two series: a legend.
        assert!(!has_legend(&series));
        fig.add("b", Vec::new(), Style::Dashed);
        assert!(!has_legend(&fig.transformed()));
        fig.series[1].points.push((1.0, 1.0));
        assert!(has_legend(&fig.transformed()));
        // Log axes drop non-positive values before the range is taken.
        let mut log = Figure::new("t").y_log();
        log.add(
            "p",
            vec![(0.0, -1.0), (1.0, 10.0), (2.0, 1000.0)],
            Style::Points,
        );
        let s = log.transformed();
        let ys: Vec<f64> = s[0].points.iter().map(|p| p.1).collect();
        assert_eq!(s[0].points.len(), 2);
        assert!(
            (ys[0] - 1.0).abs() < 1e-15 && (ys[1] - 3.0).abs() < 1e-15,
            "{ys:?}"
        );
        assert!(has_legend(&s));
    }
}
