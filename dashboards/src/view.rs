//! What a page shows of a KPI, computed once from its kept series: the chart at the chosen
//! grain, filters and range, the latest value against its limits and target, both icons, the
//! narration, and whether the data is late. The HTML pages draw it; their JSON twins
//! serialise the same structure, so the two can never disagree.

use bright_engine::annotations::{Annotation, Kind};
use bright_engine::kpi::{Grain, Kpi, Period, chart_kpi, period_end, pool};
use bright_engine::spc::PointType;
use bright_engine::spc::narrate::Describe;
use chrono::NaiveDate;
use serde::{Serialize, Serializer};

use crate::charts::spc::{ChartNote, ChartPoint, SpcChartView};
use bright_engine::spc::narrate::Unit;

/// One period of a KPI's chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointView {
    /// The period's first day.
    pub start: NaiveDate,
    /// The period as people read it.
    pub label: String,
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub mean: Option<f64>,
    pub lpl: Option<f64>,
    pub upl: Option<f64>,
    pub rebase_group: u32,
    #[serde(serialize_with = "point_type_name")]
    pub point_type: PointType,
    pub special_cause: &'static str,
}

/// An annotation where it falls on a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnnotationView {
    pub id: String,
    pub kind: Kind,
    pub on_date: NaiveDate,
    /// The period it falls in, as the chart labels it.
    pub period: String,
    /// Index of that period among the chart's points.
    pub point: usize,
    pub note: String,
    pub author: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl AnnotationView {
    /// `3 Mar 2025: Discharge lounge opened (j.smith)`; a rebase says so.
    pub fn summary(&self) -> String {
        format!(
            "{}: {}{} ({})",
            self.on_date.format("%-d %b %Y"),
            if self.kind == Kind::Rebase {
                "Rebased: "
            } else {
                ""
            },
            self.note,
            self.author
        )
    }
}

fn point_type_name<S: Serializer>(t: &PointType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

/// A KPI as a page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KpiView {
    pub id: String,
    pub title: String,
    pub description: String,
    /// `%`, `count`, `minutes`, `ratio` or `£`; values of `%` KPIs are proportions.
    pub unit: &'static str,
    pub owner: String,
    pub definition: String,
    /// The chart type its manifest names.
    pub chart: &'static str,
    pub grain: &'static str,
    pub improvement: &'static str,
    pub target: Option<f64>,
    pub target_source: Option<String>,
    /// Where values usually fall elsewhere, and the source that says so.
    pub reference_range: Option<bright_engine::kpi::ReferenceRange>,
    /// The last day of the latest period shown.
    pub updated_to: Option<NaiveDate>,
    /// True when the latest period is older than the last complete one: the data is late.
    pub stale: bool,
    pub latest: Option<f64>,
    pub mean: Option<f64>,
    pub lpl: Option<f64>,
    pub upl: Option<f64>,
    pub variation_icon: Option<&'static str>,
    pub assurance_icon: Option<&'static str>,
    pub narration: String,
    pub points: Vec<PointView>,
    /// The notes and rebases that fall in the periods shown, oldest first.
    pub annotations: Vec<AnnotationView>,
    /// Why the KPI could not be charted, if it could not.
    pub error: Option<String>,
}

/// What to show of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub grain: Grain,
    /// First period shown (by its first day), if limited.
    pub from: Option<NaiveDate>,
    /// Periods starting on or after this day are not shown.
    pub to: Option<NaiveDate>,
    /// Today: periods not yet over are left out.
    pub today: NaiveDate,
}

/// The period as a chart label: `Mar 2026`, `w/c 2 Mar 2026` or `2 Mar 2026`.
pub fn period_label(grain: Grain, start: NaiveDate) -> String {
    match grain {
        Grain::Month => start.format("%b %Y").to_string(),
        Grain::Week => format!("w/c {}", start.format("%-d %b %Y")),
        Grain::Day => start.format("%-d %b %Y").to_string(),
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The periods' plural for sentences.
fn plural(grain: Grain) -> &'static str {
    match grain {
        Grain::Day => "days",
        Grain::Week => "weeks",
        Grain::Month => "months",
    }
}

/// The index of the period of `starts` (first days, ascending, at `grain`) holding `day`; for
/// a day in a gap between periods (no data), the next period, where the change first shows.
/// `None` before the first period or after the last.
fn period_of(starts: &[NaiveDate], grain: Grain, day: NaiveDate) -> Option<usize> {
    let after = starts.partition_point(|s| *s <= day);
    let i = after.checked_sub(1)?;
    if day < period_end(grain, starts[i]) {
        Some(i)
    } else {
        (after < starts.len()).then_some(after)
    }
}

/// `kpi`'s series (`rows`, at its own grain) charted as `shape` says, with `notes` (this KPI's
/// annotations for the organisation shown) drawn where they fall; a rebase among them starts a
/// new process at its period.
pub fn kpi_view(kpi: &Kpi, rows: &[Period], shape: Shape, notes: &[Annotation]) -> KpiView {
    let grain = shape.grain.max(kpi.grain);
    let periods: Vec<Period> = pool(kpi, rows, grain, shape.today)
        .into_iter()
        .filter(|p| shape.from.is_none_or(|from| p.start >= from))
        .filter(|p| shape.to.is_none_or(|to| p.start < to))
        .collect();
    let mut view = KpiView {
        id: kpi.id.to_string(),
        title: kpi.title.clone(),
        description: kpi.description.clone(),
        unit: kpi.unit_name(),
        owner: kpi.owner.clone(),
        definition: kpi.definition.clone(),
        chart: kpi.chart.as_str(),
        grain: grain.as_str(),
        improvement: kpi.improvement.as_str(),
        target: kpi.target.as_ref().map(|t| t.value),
        target_source: kpi.target.as_ref().map(|t| t.source.clone()),
        reference_range: kpi.reference_range.clone(),
        updated_to: None,
        stale: false,
        latest: None,
        mean: None,
        lpl: None,
        upl: None,
        variation_icon: None,
        assurance_icon: None,
        narration: format!(
            "{} has no data for a complete {} in the periods shown.",
            kpi.title,
            grain.as_str()
        ),
        points: Vec::new(),
        annotations: Vec::new(),
        error: None,
    };
    let Some(last) = periods.last() else {
        view.stale = true;
        return view;
    };
    let end = period_end(grain, last.start);
    view.updated_to = end.pred_opt();
    // The last complete period is the one before today's; data that stops before it is late
    // (unless the viewer chose a range that ends earlier).
    let expected = grain
        .period_start(shape.today)
        .pred_opt()
        .map(|d| grain.period_start(d));
    view.stale = shape.to.is_none() && expected.is_some_and(|e| last.start < e);
    let starts: Vec<NaiveDate> = periods.iter().map(|p| p.start).collect();
    view.annotations = notes
        .iter()
        .filter_map(|a| {
            let point = period_of(&starts, grain, a.on_date)?;
            Some(AnnotationView {
                id: a.id.clone(),
                kind: a.kind,
                on_date: a.on_date,
                period: period_label(grain, starts[point]),
                point,
                note: a.note.clone(),
                author: a.author.clone(),
                created_at: a.created_at,
            })
        })
        .collect();
    let mut rebase = vec![false; periods.len()];
    for a in view.annotations.iter().filter(|a| a.kind == Kind::Rebase) {
        rebase[a.point] = true;
    }
    let column = |f: fn(&Period) -> Option<f64>| periods.iter().map(f).collect::<Vec<_>>();
    let chart = match chart_kpi(
        kpi,
        &column(|p| p.value),
        &column(|p| p.numerator),
        &column(|p| p.denominator),
        &rebase,
    ) {
        Ok(chart) => chart,
        Err(e) => {
            view.error = Some(e.to_string());
            return view;
        }
    };
    view.narration = chart.narrate(&Describe {
        title: &kpi.title,
        unit: kpi.unit,
        periods: plural(grain),
        target: view.target,
    });
    view.variation_icon = chart.variation_icon.map(|i| i.as_str());
    view.assurance_icon = chart.assurance_icon.map(|i| i.as_str());
    if let Some(p) = chart.points.last() {
        view.latest = p.value;
        view.mean = finite(p.centre);
        view.lpl = finite(p.lcl);
        view.upl = finite(p.ucl);
    }
    view.points = periods
        .iter()
        .zip(&chart.points)
        .map(|(period, p)| PointView {
            start: period.start,
            label: period_label(grain, period.start),
            value: p.value,
            numerator: period.numerator,
            denominator: period.denominator,
            mean: finite(p.centre),
            lpl: finite(p.lcl),
            upl: finite(p.ucl),
            rebase_group: p.rebase_group,
            point_type: p.point_type,
            special_cause: p.special_cause.as_str(),
        })
        .collect();
    view
}

impl KpiView {
    /// Draws the view's chart with `draw` (the SVG, the PNG), titled `title`.
    pub fn draw_chart<R>(&self, title: &str, draw: impl FnOnce(&SpcChartView<'_>) -> R) -> R {
        let (points, notes) = (self.chart_points(), self.chart_notes());
        draw(&SpcChartView {
            title,
            unit: self.unit.parse().unwrap_or(Unit::Count),
            points: &points,
            target: self.target,
            notes: &notes,
            band: self.band(),
        })
    }

    /// The reference range as the chart's band.
    pub fn band(&self) -> Option<(f64, f64)> {
        self.reference_range.as_ref().map(|r| (r.low, r.high))
    }

    /// The annotations as the SVG chart numbers them.
    pub fn chart_notes(&self) -> Vec<ChartNote> {
        self.annotations
            .iter()
            .map(|a| ChartNote {
                point: a.point,
                rebase: a.kind == Kind::Rebase,
                text: a.summary(),
            })
            .collect()
    }

    /// The points as the SVG chart draws them.
    pub fn chart_points(&self) -> Vec<ChartPoint> {
        self.points
            .iter()
            .map(|p| ChartPoint {
                label: p.label.clone(),
                value: p.value,
                mean: p.mean,
                lpl: p.lpl,
                upl: p.upl,
                rebase_group: p.rebase_group,
                point_type: p.point_type,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_falls_in_its_period_or_the_first_one_after_a_gap() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date");
        // Weeks from Monday 2 March 2026, the week of 16 March missing.
        let starts = [d("2026-03-02"), d("2026-03-09"), d("2026-03-23")];
        assert_eq!(period_of(&starts, Grain::Week, d("2026-03-04")), Some(0));
        assert_eq!(period_of(&starts, Grain::Week, d("2026-03-15")), Some(1));
        assert_eq!(period_of(&starts, Grain::Week, d("2026-03-18")), Some(2));
        assert_eq!(period_of(&starts, Grain::Week, d("2026-03-29")), Some(2));
        assert_eq!(period_of(&starts, Grain::Week, d("2026-03-01")), None);
        assert_eq!(period_of(&starts, Grain::Week, d("2026-03-30")), None);
    }
}
