//! Plots people would rather look at than tables: ROC curves and score
//! histograms, drawn with plotters into a buffer and saved as PNG (or SVG
//! when the file name ends in `.svg`). The font is embedded, so plotting
//! needs no system font library.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::EvalError;

const SIZE: (u32, u32) = (900, 600);

/// One line on a chart: label and (x, y) points.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in; registration fails only on a corrupt font.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> EvalError {
    EvalError::Plot {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Draws with `draw` onto a PNG or SVG file at `path`.
fn render(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
    draw_svg: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<(), EvalError> {
    register_font();
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
    {
        let area = SVGBackend::new(path, SIZE).into_drawing_area();
        draw_svg(&area).map_err(|e| plot_err(path, e))?;
        return area.present().map_err(|e| plot_err(path, e));
    }
    let mut buffer = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    {
        let area = BitMapBackend::with_buffer(&mut buffer, SIZE).into_drawing_area();
        draw(&area).map_err(|e| plot_err(path, e))?;
        area.present().map_err(|e| plot_err(path, e))?;
    }
    let image = image::RgbImage::from_raw(SIZE.0, SIZE.1, buffer)
        .ok_or_else(|| plot_err(path, "plot buffer has the wrong size"))?;
    image.save(path).map_err(|e| plot_err(path, e))
}

/// Titles and series of a line chart.
struct Lines<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    series: &'a [Series],
    legend: SeriesLabelPosition,
}

/// Draws `lines` on axes `x` × `y`; points are clamped to `floor` (the
/// log axes' minima) so rates of 0 stay on the chart.
fn draw_lines<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    lines: &Lines<'_>,
    x: X,
    y: Y,
    floor: (f64, f64),
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    area.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(area)
        .caption(lines.title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(lines.x_label)
        .y_desc(lines.y_label)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, s) in lines.series.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let pts = s
            .points
            .iter()
            .map(|&(x, y)| (x.max(floor.0), y.max(floor.1)));
        chart
            .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(lines.legend.clone())
        .draw()
        .map_err(|e| e.to_string())
}

/// ROC with a logarithmic false-accept axis from 1e-4 to 1.
pub fn roc_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), EvalError> {
    let lines = Lines {
        title,
        x_label,
        y_label,
        series,
        legend: SeriesLabelPosition::LowerRight,
    };
    let x = || (1e-4f64..1.0f64).log_scale();
    render(
        path,
        |a| draw_lines(a, &lines, x(), 0.0f64..1.0f64, (1e-4, 0.0)),
        |a| draw_lines(a, &lines, x(), 0.0f64..1.0f64, (1e-4, 0.0)),
    )
}

/// DET: false reject rate against false accept rate, both on logarithmic
/// axes (FAR 1e-4..1, FRR 1e-3..1); a rate of 0 is drawn on the axis.
pub fn det_chart(path: &Path, title: &str, series: &[Series]) -> Result<(), EvalError> {
    let lines = Lines {
        title,
        x_label: "false accept rate (impostors accepted)",
        y_label: "false reject rate (genuine pairs rejected)",
        series,
        legend: SeriesLabelPosition::UpperRight,
    };
    let x = || (1e-4f64..1.0f64).log_scale();
    let y = || (1e-3f64..1.0f64).log_scale();
    render(
        path,
        |a| draw_lines(a, &lines, x(), y(), (1e-4, 1e-3)),
        |a| draw_lines(a, &lines, x(), y(), (1e-4, 1e-3)),
    )
}

/// Overlaid histograms of two score populations with the threshold marked.
pub fn score_histogram(
    path: &Path,
    title: &str,
    populations: [(&str, &[f32]); 2],
    threshold: f32,
) -> Result<(), EvalError> {
    fn draw<DB: DrawingBackend>(
        area: &DrawingArea<DB, Shift>,
        title: &str,
        populations: [(&str, &[f32]); 2],
        threshold: f32,
    ) -> Result<(), String> {
        const BINS: usize = 60;
        let finite = || {
            populations
                .iter()
                .flat_map(|(_, s)| s.iter().copied())
                .filter(|s| s.is_finite())
        };
        let lo = finite().fold(f32::INFINITY, f32::min).min(threshold) as f64;
        let hi = finite().fold(f32::NEG_INFINITY, f32::max).max(threshold) as f64;
        let (lo, hi) = if lo < hi {
            (lo, hi)
        } else {
            (lo - 1.0, lo + 1.0)
        };
        let width = (hi - lo) / BINS as f64;
        let counts: Vec<Vec<usize>> = populations
            .iter()
            .map(|(_, scores)| {
                let mut c = vec![0usize; BINS];
                for s in scores.iter().filter(|s| s.is_finite()) {
                    let b = (((*s as f64 - lo) / width) as usize).min(BINS - 1);
                    c[b] += 1;
                }
                c
            })
            .collect();
        let top = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
        area.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("similarity")
            .y_desc("pairs")
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, ((label, _), c)) in populations.iter().zip(&counts).enumerate() {
            let colour = Palette99::pick(i).mix(0.5);
            chart
                .draw_series(c.iter().enumerate().map(|(b, &n)| {
                    let x0 = lo + b as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width, n as f64)], colour.filled())
                }))
                .map_err(|e| e.to_string())?
                .label(label.to_string())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled())
                });
        }
        let t = threshold as f64;
        chart
            .draw_series(LineSeries::new([(t, 0.0), (t, top)], BLACK.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(format!("threshold {threshold:.3}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())
    }
    render(
        path,
        |a| draw(a, title, populations, threshold),
        |a| draw(a, title, populations, threshold),
    )
}

/// Per-stage latency: for each series, a p50 bar and a thin p99 whisker
/// per stage. `series[k].points[i]` is (p50, p99) of stage `stages[i]`.
pub fn latency_chart(
    path: &Path,
    title: &str,
    stages: &[&str],
    series: &[Series],
) -> Result<(), EvalError> {
    fn draw<DB: DrawingBackend>(
        area: &DrawingArea<DB, Shift>,
        title: &str,
        stages: &[&str],
        series: &[Series],
    ) -> Result<(), String> {
        let top = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(1.0f64, f64::max)
            * 1.15;
        let groups = stages.len().max(1) as f64;
        let width = 0.8 / series.len().max(1) as f64;
        area.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..groups, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(stages.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 {
                    stages.get(i).map(|s| s.to_string()).unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("milliseconds (bar p50, whisker p99)")
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| e.to_string())?;
        for (k, s) in series.iter().enumerate() {
            let colour = Palette99::pick(k);
            let x0 = |i: usize| i as f64 + 0.1 + k as f64 * width;
            chart
                .draw_series(s.points.iter().enumerate().map(|(i, &(p50, _))| {
                    Rectangle::new([(x0(i), 0.0), (x0(i) + width * 0.9, p50)], colour.filled())
                }))
                .map_err(|e| e.to_string())?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled())
                });
            chart
                .draw_series(s.points.iter().enumerate().map(|(i, &(p50, p99))| {
                    let mid = x0(i) + width * 0.45;
                    PathElement::new(vec![(mid, p50), (mid, p99)], BLACK.stroke_width(2))
                }))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| e.to_string())
    }
    render(
        path,
        |a| draw(a, title, stages, series),
        |a| draw(a, title, stages, series),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_png_and_svg_charts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let series = [Series {
            label: "test".into(),
            points: vec![(1e-3, 0.5), (1e-2, 0.8), (1.0, 1.0)],
        }];
        let png = dir.path().join("roc.png");
        roc_chart(&png, "ROC", "FAR", "TAR", &series).expect("png");
        let det = dir.path().join("det.svg");
        det_chart(&det, "DET", &series).expect("det");
        assert!(std::fs::read_to_string(&det).expect("svg").contains("<svg"));
        let decoded = image::open(&png).expect("a readable PNG");
        assert_eq!((decoded.width(), decoded.height()), SIZE);
        let svg = dir.path().join("hist.svg");
        score_histogram(
            &svg,
            "scores",
            [("genuine", &[0.9, 0.8]), ("impostor", &[0.1, 0.2])],
            0.5,
        )
        .expect("svg");
        let text = std::fs::read_to_string(&svg).expect("svg text");
        assert!(text.contains("<svg") && text.contains("threshold 0.500"));
    }
}
