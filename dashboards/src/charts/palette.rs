//! The Making Data Count colours, in one place for charts, icons and (later) the PNG export.
//!
//! Charts use the reference package's *point* colours and icons its *icon* colours, as
//! NHSRplotthedots does; the two sets differ slightly and both are what NHS boards are used to.

/// Chart: a point of common-cause variation, and the data line.
pub const POINT_COMMON: &str = "#A6A6A6";
/// Chart: special cause of an improving nature.
pub const POINT_IMPROVEMENT: &str = "#00B0F0";
/// Chart: special cause of a concerning nature.
pub const POINT_CONCERN: &str = "#E46C0A";
/// Chart: special cause where neither direction is better.
pub const POINT_NEUTRAL: &str = "#490092";
/// Chart: the mean (centre line), solid.
pub const MEAN: &str = "#000000";
/// Chart: the process limits, dashed.
pub const LIMITS: &str = "#A6A6A6";
/// Chart: the target, dashed.
pub const TARGET: &str = "#DE1B1B";

/// Chart: an annotation's line and numbered marker (NHS blue; white numbers on it pass AA).
pub const NOTE: &str = "#005EB8";

/// Chart: the band of a KPI's reference range (NHS blue at 8% on white, solid so the SVG and
/// the PNG match).
pub const REFERENCE_BAND: &str = "#EBF3FA";

/// Icon: improvement (ring, latest points, letter).
pub const ICON_IMPROVEMENT: &str = "#0072C6";
/// Icon: concern.
pub const ICON_CONCERN: &str = "#FF6600";
/// Icon: neutral special cause.
pub const ICON_NEUTRAL: &str = "#8000C0";
/// Icon: common cause, and the hit-and-miss ring and target line.
pub const ICON_COMMON: &str = "#BFBFBF";
/// Icon: the earlier points and the process line.
pub const ICON_HISTORY: &str = "#7F7F7F";

/// Fonts for the icons' letters: headless browsers on Linux often have no Arial.
pub const ICON_FONT: &str = "Arial, Helvetica, \"Liberation Sans\", sans-serif";

/// Fonts for the charts' axis text.
pub const CHART_FONT: &str = "\"Segoe UI\", Arial, Helvetica, \"Liberation Sans\", sans-serif";
