//! The SPC chart as a PNG, for board papers and e-mail: drawn with plotters into an RGB buffer
//! from the same [`Layout`] as the SVG (same series, limits, target, notes and colours), with
//! the KPI's title above the plot and an embedded font, so every machine draws the same
//! pixels. Text labels are horizontal (plotters turns text only by quarter turns), so the
//! periods under the axis are fewer than the SVG's.

use std::sync::OnceLock;

use plotters::backend::BitMapBackend;
use plotters::element::{Circle, DashedPathElement, PathElement, Rectangle, Text};
use plotters::prelude::{DrawingArea, IntoDrawingArea};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontStyle, IntoFont, RGBColor};

use super::palette::{LIMITS, MEAN, NOTE, POINT_COMMON, REFERENCE_BAND, TARGET};
use super::spc::{ChartPoint, Layout, SpcChartView, point_colour};

/// The embedded font (DejaVu Sans; licence beside it in `assets/fonts`).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The name plotters knows it by.
const FAMILY: &str = "bright-chart";
/// Height of the title band above the plot, in chart units.
pub const TITLE_BAND: f64 = 28.0;
/// At most this many period labels under the axis.
const MAX_LABELS: usize = 6;

/// Why a PNG could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PngError {
    #[error("drawing the chart: {0}")]
    Draw(String),
    #[error("encoding the PNG: {0}")]
    Encode(#[from] png::EncodingError),
}

fn draw_error<E: std::fmt::Debug>(e: E) -> PngError {
    PngError::Draw(format!("{e:?}"))
}

/// A palette colour (`#RRGGBB`) for plotters.
pub fn rgb(hex: &str) -> RGBColor {
    let byte = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    };
    RGBColor(byte(1), byte(3), byte(5))
}

fn font_registered() -> Result<(), PngError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(PngError::Draw("the embedded font does not load".into()))
    }
}

/// `view` as a PNG, `scale` pixels per chart unit (2 gives a 1440-pixel-wide image).
pub fn spc_chart_png(view: &SpcChartView<'_>, scale: u32) -> Result<Vec<u8>, PngError> {
    font_registered()?;
    let scale = scale.clamp(1, 4);
    let (width, height) = (
        (Layout::WIDTH as u32) * scale,
        ((Layout::HEIGHT + TITLE_BAND) as u32) * scale,
    );
    let mut buffer = vec![255u8; width as usize * height as usize * 3];
    {
        let area = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        draw(&area, view, f64::from(scale))?;
        area.present().map_err(draw_error)?;
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&buffer)?;
    writer.finish()?;
    Ok(out)
}

/// Where chart point (`x`, `y`) lands in the PNG at `scale`.
pub fn pixel(x: f64, y: f64, scale: f64) -> (i32, i32) {
    (
        (x * scale).round() as i32,
        ((y + TITLE_BAND) * scale).round() as i32,
    )
}

fn draw(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    view: &SpcChartView<'_>,
    scale: f64,
) -> Result<(), PngError> {
    let layout = Layout::of(view);
    let at = |x: f64, y: f64| pixel(x, y, scale);
    let (left, top, right, bottom) = Layout::PLOT;
    let font = |size: f64| (FAMILY, size * scale).into_font();
    let text_colour = RGBColor(0x40, 0x40, 0x40);
    let width = |w: f64| (w * scale).round().max(1.0) as u32;

    area.draw(&Text::new(
        view.title.to_string(),
        at(left, -TITLE_BAND / 2.0),
        font(15.0)
            .color(&RGBColor(0x21, 0x2B, 0x32))
            .pos(Pos::new(HPos::Left, VPos::Center)),
    ))
    .map_err(draw_error)?;
    if let Some((low, high)) = view.band {
        area.draw(&Rectangle::new(
            [at(left, layout.y(high)), at(right, layout.y(low))],
            rgb(REFERENCE_BAND).filled(),
        ))
        .map_err(draw_error)?;
    }
    for tick in layout.ticks() {
        let y = layout.y(tick);
        area.draw(&PathElement::new(
            vec![at(left, y), at(right, y)],
            rgb("#D9D9D9").stroke_width(width(1.0)),
        ))
        .map_err(draw_error)?;
        area.draw(&Text::new(
            view.unit.format(tick),
            at(left - 6.0, y),
            font(11.0)
                .color(&text_colour)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))
        .map_err(draw_error)?;
    }
    area.draw(&Rectangle::new(
        [at(left, top), at(right, bottom)],
        rgb(LIMITS).stroke_width(width(1.0)),
    ))
    .map_err(draw_error)?;
    // Notes' lines behind the data (their markers are drawn last, on top).
    for note in view.notes.iter().filter(|n| n.point < view.points.len()) {
        let x = layout.x(note.point);
        let line = vec![at(x, top), at(x, bottom)];
        if note.rebase {
            area.draw(&PathElement::new(line, rgb(NOTE).stroke_width(width(2.0))))
                .map_err(draw_error)?;
        } else {
            area.draw(&DashedPathElement::new(
                line,
                (2.0 * scale) as i32,
                (3.0 * scale) as i32,
                rgb(NOTE).stroke_width(width(1.5)),
            ))
            .map_err(draw_error)?;
        }
    }
    if let Some(target) = view.target {
        let y = layout.y(target);
        dashed(area, &[vec![at(left, y), at(right, y)]], TARGET, scale)?;
    }
    let lines =
        |value: fn(&ChartPoint) -> Option<f64>| segments(view.points, value, &layout, scale);
    dashed(area, &lines(|p| p.lpl), LIMITS, scale)?;
    dashed(area, &lines(|p| p.upl), LIMITS, scale)?;
    for (line, colour) in [
        (lines(|p| p.mean), MEAN),
        (lines(|p| p.value), POINT_COMMON),
    ] {
        for part in line {
            area.draw(&PathElement::new(
                part,
                rgb(colour).stroke_width(width(1.5)),
            ))
            .map_err(draw_error)?;
        }
    }
    for (i, point) in view.points.iter().enumerate() {
        if let Some(value) = point.value {
            let (fill, _) = point_colour(point.point_type);
            area.draw(&Circle::new(
                at(layout.x(i), layout.y(value)),
                (4.0 * scale).round() as i32,
                rgb(fill).filled(),
            ))
            .map_err(draw_error)?;
        }
    }
    for (n, note) in view.notes.iter().enumerate() {
        if note.point >= view.points.len() {
            continue;
        }
        let (x, y) = layout.note_marker(view.notes, n);
        area.draw(&Circle::new(
            at(x, y),
            (9.0 * scale).round() as i32,
            rgb(NOTE).filled(),
        ))
        .map_err(draw_error)?;
        area.draw(&Text::new(
            (n + 1).to_string(),
            at(x, y),
            font(11.0)
                .color(&RGBColor(255, 255, 255))
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(draw_error)?;
    }
    key(area, view, scale)?;
    let every = view.points.len().div_ceil(MAX_LABELS).max(1);
    for (i, point) in view
        .points
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
    {
        area.draw(&Text::new(
            point.label.clone(),
            at(layout.x(i), bottom + 6.0),
            font(11.0)
                .color(&text_colour)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(draw_error)?;
    }
    Ok(())
}

/// A one-line key under the periods: what the lines and colours mean (a PNG has no tooltips).
fn key(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    view: &SpcChartView<'_>,
    scale: f64,
) -> Result<(), PngError> {
    use super::palette::{POINT_CONCERN, POINT_IMPROVEMENT, POINT_NEUTRAL};
    use bright_engine::spc::PointType;
    let (left, _, _, bottom) = Layout::PLOT;
    let y = bottom + 40.0;
    let at = |x: f64| pixel(x, y, scale);
    let style = (FAMILY, 11.0 * scale)
        .into_font()
        .color(&RGBColor(0x40, 0x40, 0x40))
        .pos(Pos::new(HPos::Left, VPos::Center));
    let mut x = left;
    let label = |area: &DrawingArea<_, _>, x: &mut f64, text: &str| {
        area.draw(&Text::new(text.to_string(), at(*x), style.clone()))
            .map_err(draw_error)?;
        let (w, _) = area.estimate_text_size(text, &style).map_err(draw_error)?;
        *x += 14.0 + f64::from(w) / scale;
        Ok::<(), PngError>(())
    };
    let line = |area: &DrawingArea<_, _>, x: &mut f64, colour: &str, dashed: bool| {
        let ends = vec![at(*x), at(*x + 20.0)];
        let style = rgb(colour).stroke_width((1.5 * scale).round() as u32);
        if dashed {
            area.draw(&DashedPathElement::new(
                ends,
                (6.0 * scale) as i32,
                (4.0 * scale) as i32,
                style,
            ))
            .map_err(draw_error)?;
        } else {
            area.draw(&PathElement::new(ends, style))
                .map_err(draw_error)?;
        }
        *x += 25.0;
        Ok::<(), PngError>(())
    };
    let dot = |area: &DrawingArea<_, _>, x: &mut f64, colour: &str| {
        area.draw(&Circle::new(
            at(*x + 4.0),
            (4.0 * scale).round() as i32,
            rgb(colour).filled(),
        ))
        .map_err(draw_error)?;
        *x += 12.0;
        Ok::<(), PngError>(())
    };
    line(area, &mut x, MEAN, false)?;
    label(area, &mut x, "Mean")?;
    line(area, &mut x, LIMITS, true)?;
    label(area, &mut x, "Process limits")?;
    if view.target.is_some() {
        line(area, &mut x, TARGET, true)?;
        label(area, &mut x, "Target")?;
    }
    if view.band.is_some() {
        area.draw(&Rectangle::new(
            [pixel(x, y - 5.0, scale), pixel(x + 20.0, y + 5.0, scale)],
            rgb(REFERENCE_BAND).filled(),
        ))
        .map_err(draw_error)?;
        x += 25.0;
        label(area, &mut x, "Reference range")?;
    }
    let shown = |t: PointType| {
        view.points
            .iter()
            .any(|p| p.value.is_some() && p.point_type == t)
    };
    for (types, colour, text) in [
        (&[PointType::CommonCause][..], POINT_COMMON, "Common cause"),
        (
            &[PointType::SpecialCauseImprovement][..],
            POINT_IMPROVEMENT,
            "Improvement",
        ),
        (
            &[PointType::SpecialCauseConcern][..],
            POINT_CONCERN,
            "Concern",
        ),
        (
            &[
                PointType::SpecialCauseNeutralHigh,
                PointType::SpecialCauseNeutralLow,
            ][..],
            POINT_NEUTRAL,
            "Special cause",
        ),
    ] {
        if types.iter().any(|t| shown(*t)) {
            dot(area, &mut x, colour)?;
            label(area, &mut x, text)?;
        }
    }
    Ok(())
}

/// The polylines of one series in PNG pixels, broken at missing values and rebases (as the
/// SVG's paths are).
fn segments(
    points: &[ChartPoint],
    value: fn(&ChartPoint) -> Option<f64>,
    layout: &Layout,
    scale: f64,
) -> Vec<Vec<(i32, i32)>> {
    let mut out: Vec<Vec<(i32, i32)>> = Vec::new();
    let mut previous: Option<u32> = None;
    for (i, point) in points.iter().enumerate() {
        match value(point) {
            Some(v) => {
                let here = pixel(layout.x(i), layout.y(v), scale);
                match out.last_mut() {
                    Some(line) if previous == Some(point.rebase_group) => line.push(here),
                    _ => out.push(vec![here]),
                }
                previous = Some(point.rebase_group);
            }
            None => previous = None,
        }
    }
    out
}

/// Dashed lines of 6 on, 4 off, as the SVG's `stroke-dasharray="6 4"`.
fn dashed(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    lines: &[Vec<(i32, i32)>],
    colour: &str,
    scale: f64,
) -> Result<(), PngError> {
    for line in lines.iter().filter(|l| l.len() > 1) {
        area.draw(&DashedPathElement::new(
            line.clone(),
            (6.0 * scale) as i32,
            (4.0 * scale) as i32,
            rgb(colour).stroke_width((1.5 * scale).round() as u32),
        ))
        .map_err(draw_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::spc::spc_chart_svg;
    use crate::charts::spc::tests::{notes, series, view};

    /// The PNG's size and RGB bytes.
    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .expect("a PNG");
        let mut buffer = vec![0; reader.output_buffer_size().expect("a size")];
        let info = reader.next_frame(&mut buffer).expect("a frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buffer.truncate(info.buffer_size());
        (info.width, info.height, buffer)
    }

    /// The SVG's elements as (name, attributes) pairs.
    fn elements(svg: &str) -> Vec<(String, Vec<(String, String)>)> {
        svg.split('<')
            .filter(|t| !t.starts_with('/') && !t.is_empty())
            .map(|tag| {
                let tag = tag.split('>').next().unwrap_or("");
                let name = tag.split_whitespace().next().unwrap_or("").to_string();
                let attributes = tag
                    .split('"')
                    .collect::<Vec<_>>()
                    .chunks(2)
                    .filter_map(|pair| match pair {
                        [key, value] => Some((
                            key.trim()
                                .trim_end_matches('=')
                                .rsplit(' ')
                                .next()?
                                .to_string(),
                            value.to_string(),
                        )),
                        _ => None,
                    })
                    .collect();
                (name, attributes)
            })
            .collect()
    }

    fn attr<'a>(attributes: &'a [(String, String)], name: &str) -> Option<&'a str> {
        attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    struct Image {
        width: u32,
        height: u32,
        rgb: Vec<u8>,
    }

    impl Image {
        fn at(&self, (x, y): (i32, i32)) -> Option<RGBColor> {
            if x < 0 || y < 0 || x as u32 >= self.width || y as u32 >= self.height {
                return None;
            }
            let i = (y as usize * self.width as usize + x as usize) * 3;
            Some(RGBColor(self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]))
        }

        /// The share of the columns from `x0` to `x1` (chart units) whose pixels at `y`
        /// (±1 pixel) are `colour`.
        fn share_along(&self, x0: f64, x1: f64, y: f64, colour: RGBColor) -> f64 {
            let (from, row) = pixel(x0, y, SCALE);
            let (to, _) = pixel(x1, y, SCALE);
            let columns = (from + 1..to).collect::<Vec<_>>();
            let hits = columns
                .iter()
                .filter(|&&x| (row - 1..=row + 1).any(|r| self.at((x, r)) == Some(colour)))
                .count();
            hits as f64 / columns.len().max(1) as f64
        }
    }

    const SCALE: f64 = 2.0;

    /// Horizontal runs of an SVG path (`M x y L x y …`, broken by each `M`): (x0, x1, y).
    fn runs(d: &str) -> Vec<(f64, f64, f64)> {
        let mut out = Vec::new();
        for segment in d.split('M').filter(|s| !s.is_empty()) {
            let points: Vec<(f64, f64)> = segment
                .split('L')
                .filter_map(|p| {
                    let mut xy = p.split_whitespace().filter_map(|n| n.parse::<f64>().ok());
                    Some((xy.next()?, xy.next()?))
                })
                .collect();
            for pair in points.windows(2) {
                if (pair[0].1 - pair[1].1).abs() < 0.01 {
                    out.push((pair[0].0, pair[1].0, pair[0].1));
                }
            }
        }
        out
    }

    #[test]
    fn the_png_draws_the_svg_s_series_limits_target_and_notes_in_its_colours() {
        let (points, notes) = (series(), notes());
        let view = view(&points, &notes);
        let svg = spc_chart_svg(&view).into_string();
        let drawn = spc_chart_png(&view, 2).expect("draws");
        // Saved beside the pages' screenshots, for people to look at.
        if let Some(dir) = std::env::var_os("BRIGHT_SCREENSHOTS") {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(std::path::Path::new(&dir).join("chart-export.png"), &drawn);
        }
        let (width, height, bytes) = decode(&drawn);
        assert_eq!((width, height), (1440, 696));
        let image = Image {
            width,
            height,
            rgb: bytes,
        };
        let svg = elements(&svg);

        // Every point: the same colour at the same place.
        let mut checked = 0;
        for (_, a) in svg.iter().filter(|(n, a)| {
            n == "circle" && attr(a, "class").is_some_and(|c| c.starts_with("pt-"))
        }) {
            let number = |k| attr(a, k).and_then(|v| v.parse::<f64>().ok()).expect(k);
            let fill = rgb(attr(a, "fill").expect("fill"));
            let at = pixel(number("cx"), number("cy"), SCALE);
            assert_eq!(image.at(at), Some(fill), "point at {at:?}");
            checked += 1;
        }
        assert_eq!(checked, points.iter().filter(|p| p.value.is_some()).count());
        // Two kinds of point are drawn: common cause and improvement.
        assert!(svg.iter().any(|(_, a)| attr(a, "class") == Some("pt-imp")));

        // The target, limits and mean along the SVG's lines, dashed or solid, in their colours.
        let target = svg
            .iter()
            .find(|(_, a)| attr(a, "class") == Some("target"))
            .expect("a target line");
        let y = attr(&target.1, "y1")
            .and_then(|v| v.parse::<f64>().ok())
            .expect("y1");
        let share = image.share_along(64.0, 704.0, y, rgb(TARGET));
        assert!((0.45..0.8).contains(&share), "target dashed: {share}");
        let mut limit_runs = 0;
        for (class, colour, dashed) in [("limit", LIMITS, true), ("mean", MEAN, false)] {
            for (_, a) in svg.iter().filter(|(_, a)| attr(a, "class") == Some(class)) {
                for (x0, x1, y) in runs(attr(a, "d").expect("d")) {
                    let share = image.share_along(x0, x1, y, rgb(colour));
                    if dashed {
                        assert!(
                            (0.3..0.85).contains(&share),
                            "{class} {x0}–{x1} at {y}: {share}"
                        );
                        limit_runs += 1;
                    } else {
                        assert!(share > 0.6, "{class} {x0}–{x1} at {y}: {share}");
                    }
                }
            }
        }
        assert!(limit_runs > 40, "both limits, both processes: {limit_runs}");

        // Each note's numbered marker where the SVG puts it.
        let markers: Vec<(f64, f64)> = svg
            .iter()
            .filter(|(n, a)| n == "circle" && attr(a, "fill") == Some(NOTE))
            .map(|(_, a)| {
                let number = |k| attr(a, k).and_then(|v| v.parse::<f64>().ok()).expect(k);
                (number("cx"), number("cy"))
            })
            .collect();
        assert_eq!(markers.len(), notes.len());
        for (x, y) in markers {
            // Beside the centre, clear of the white number.
            assert_eq!(
                image.at(pixel(x + 6.0, y, SCALE)),
                Some(rgb(NOTE)),
                "note at {x}"
            );
        }
        // The reference range's band, behind the rest.
        let band = svg
            .iter()
            .find(|(_, a)| attr(a, "class") == Some("reference"))
            .expect("a band");
        let number = |k| {
            attr(&band.1, k)
                .and_then(|v| v.parse::<f64>().ok())
                .expect(k)
        };
        let middle = number("y") + number("height") / 2.0;
        let share = image.share_along(64.0, 704.0, middle, rgb(REFERENCE_BAND));
        assert!(share > 0.5, "band at {middle}: {share}");
        // And the background is white where nothing is drawn.
        assert_eq!(image.at((2, 2)), Some(RGBColor(255, 255, 255)));
    }
}
