//! `curves.png`: the run's metrics per epoch, redrawn after every epoch.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::{Map, Value};

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is built in, so registering it cannot fail for want of a file.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

const COLOURS: [RGBColor; 4] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189)];

/// One panel per (title, metric keys), side by side, epochs along x.
pub fn draw(path: &Path, records: &[Map<String, Value>], panels: &[(&str, Vec<&str>)]) -> Result<()> {
    register_font();
    // The backend picks the encoder from the extension, so the temporary name ends in .png.
    let tmp = path.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (480 * panels.len() as u32, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
        for (area, (title, keys)) in root.split_evenly((1, panels.len())).iter().zip(panels) {
            let series: Vec<(&str, Vec<(f64, f64)>)> = keys
                .iter()
                .map(|k| {
                    let points = records
                        .iter()
                        .filter_map(|r| Some((r.get("epoch")?.as_f64()?, r.get(*k)?.as_f64()?)))
                        .filter(|(_, v)| v.is_finite())
                        .collect();
                    (*k, points)
                })
                .collect();
            let all: Vec<f64> = series.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v)).collect();
            let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            if !lo.is_finite() {
                continue;
            }
            // A lone value (the first scored epoch) still gets a readable range around it.
            let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.05).max(1e-3);
            // Half an epoch either side, so that the first and last points are not on the frame.
            let last = records.len().max(1) as f64 + 0.5;
            let mut chart = ChartBuilder::on(area)
                .caption(*title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(55)
                .build_cartesian_2d(0.5..last, (lo - pad)..(hi + pad))
                .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
            chart.configure_mesh().x_desc("epoch").draw().map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
            for (i, (name, points)) in series.into_iter().enumerate() {
                let colour = COLOURS[i % COLOURS.len()];
                chart
                    .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                    .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
                // Points too: a metric scored every few epochs starts as a single one, and such
                // sparse points read best with their values beside them.
                let labelled = points.len() <= 3 || (points.len() < records.len() && points.len() <= 12);
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
                if labelled {
                    // Above each point, and towards the middle, so that none runs off the frame.
                    let middle = (0.5 + last) / 2.0;
                    let label = |&(x, y): &(f64, f64)| {
                        let (side, dx) = if x > middle { (HPos::Right, -4) } else { (HPos::Left, 4) };
                        let font = ("sans-serif", 13).into_font().color(&colour).pos(Pos::new(side, VPos::Bottom));
                        EmptyElement::at((x, y)) + Text::new(format!("{}", Short(y)), (dx, -5), font)
                    };
                    chart.draw_series(points.iter().map(label)).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
        }
        root.present().map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A value in 4 significant figures or so: 111.9, 0.5732, 1.2e-5.
struct Short(f64);

impl std::fmt::Display for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        match v.abs() {
            a if a >= 1000.0 => write!(f, "{v:.0}"),
            a if a >= 1.0 => write!(f, "{v:.1}"),
            a if a >= 1e-3 || a == 0.0 => write!(f, "{v:.4}"),
            _ => write!(f, "{v:.1e}"),
        }
    }
}
