//! The eleven Making Data Count icons as SVG: seven for variation (what the latest point says
//! about the process), four for assurance (whether the target will be met).
//!
//! The geometry is that of the NHS icons boards know (a ring of radius 151 in a 378 × 378
//! box; a mini run chart of five points, or an arrow, for variation; a wavy process line and a
//! dashed target for assurance). Colour is never the only carrier of meaning: the letters H
//! and L, P and F and ?, the arrows' directions and the points' positions say it too, and each
//! icon has a title in Making Data Count's words for screen readers and tooltips. Elements
//! are always closed (`<circle …></circle>`), so an icon is valid both as an `.svg` file and
//! inline in HTML.

use bright_engine::spc::{AssuranceIcon, VariationIcon};
use maud::{Markup, html};

use super::palette::{
    ICON_COMMON, ICON_CONCERN, ICON_FONT, ICON_HISTORY, ICON_IMPROVEMENT, ICON_NEUTRAL,
};

/// Any of the eleven icons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    Variation(VariationIcon),
    Assurance(AssuranceIcon),
    /// Drawn where a KPI has no target (or a neutral direction): no assurance can be given.
    NoTarget,
}

impl Icon {
    /// Every icon, variation first.
    pub const ALL: [Icon; 11] = [
        Icon::Variation(VariationIcon::CommonCause),
        Icon::Variation(VariationIcon::ImprovementHigh),
        Icon::Variation(VariationIcon::ImprovementLow),
        Icon::Variation(VariationIcon::ConcernHigh),
        Icon::Variation(VariationIcon::ConcernLow),
        Icon::Variation(VariationIcon::NeutralHigh),
        Icon::Variation(VariationIcon::NeutralLow),
        Icon::Assurance(AssuranceIcon::Pass),
        Icon::Assurance(AssuranceIcon::Fail),
        Icon::Assurance(AssuranceIcon::Inconsistent),
        Icon::NoTarget,
    ];

    /// A stable name, as in the engine's output (`improvement_high`, `pass`, `no_target`).
    pub fn name(self) -> &'static str {
        match self {
            Icon::Variation(v) => v.as_str(),
            Icon::Assurance(a) => a.as_str(),
            Icon::NoTarget => "no_target",
        }
    }

    /// What the icon means, in Making Data Count's words.
    pub fn title(self) -> &'static str {
        match self {
            Icon::Variation(VariationIcon::CommonCause) => {
                "Common cause variation: no significant change in the process"
            }
            Icon::Variation(VariationIcon::ImprovementHigh) => {
                "Special cause variation of an improving nature, due to higher values"
            }
            Icon::Variation(VariationIcon::ImprovementLow) => {
                "Special cause variation of an improving nature, due to lower values"
            }
            Icon::Variation(VariationIcon::ConcernHigh) => {
                "Special cause variation of a concerning nature, due to higher values"
            }
            Icon::Variation(VariationIcon::ConcernLow) => {
                "Special cause variation of a concerning nature, due to lower values"
            }
            Icon::Variation(VariationIcon::NeutralHigh) => {
                "Special cause variation, neither improving nor concerning, due to higher values"
            }
            Icon::Variation(VariationIcon::NeutralLow) => {
                "Special cause variation, neither improving nor concerning, due to lower values"
            }
            Icon::Assurance(AssuranceIcon::Pass) => "The target will be consistently passed",
            Icon::Assurance(AssuranceIcon::Fail) => {
                "The target will be consistently failed (falling short of it)"
            }
            Icon::Assurance(AssuranceIcon::Inconsistent) => {
                "Hit and miss: the target will be met some of the time, by random variation"
            }
            Icon::NoTarget => "No target, so no assurance",
        }
    }
}

/// The five points' x positions in a variation icon.
const DOT_X: [f64; 5] = [97.0, 144.0, 191.5, 238.5, 286.0];
const DOT_R: f64 = 21.0;

/// The wavy process line of the assurance icons.
const PROCESS_LINE: &str = "M72.5 238.762C89.046 218.168 107.725 200.801 129.638 200.507 152.134 201.459 176.57 238.689 192.563 241.313 206.31 244.118 205.897 217.733 212.814 216.659 217.563 215.414 220.151 238.182 233.066 240.463 248.557 243.786 291.62 234.385 302.5 236.212";
const ARROW_UP: &str = "M103.652 242.245 180.02 165.878 151.735 137.593 258.273 119.68 240.359 226.217 212.075 197.933 135.708 274.3Z";
const ARROW_DOWN: &str = "M135.708 103.652 212.075 180.02 240.359 151.735 258.273 258.273 151.735 240.359 180.02 212.075 103.652 135.708Z";

/// A mini run chart: five points joined by bars, each point in its colour.
fn run_chart(ys: [f64; 5], colours: [&str; 5]) -> Markup {
    html! {
        @for i in 0..4 {
            line x1=(DOT_X[i]) y1=(ys[i]) x2=(DOT_X[i + 1]) y2=(ys[i + 1])
                stroke=(colours[i + 1]) stroke-width="9" {}
        }
        @for i in 0..5 {
            circle cx=(DOT_X[i]) cy=(ys[i]) r=(DOT_R) fill=(colours[i]) {}
        }
    }
}

fn letter(text: &str, x: f64, y: f64, colour: &str) -> Markup {
    html! {
        text x=(x) y=(y) fill=(colour) font-family=(ICON_FONT) font-weight="bold"
            font-size="117" { (text) }
    }
}

/// `icon` as an SVG element `size` pixels square.
pub fn icon_svg(icon: Icon, size: u32) -> Markup {
    let (ring, dashed_ring) = match icon {
        Icon::Variation(VariationIcon::CommonCause) => (ICON_COMMON, false),
        Icon::Variation(VariationIcon::ImprovementHigh | VariationIcon::ImprovementLow) => {
            (ICON_IMPROVEMENT, false)
        }
        Icon::Variation(VariationIcon::ConcernHigh | VariationIcon::ConcernLow) => {
            (ICON_CONCERN, false)
        }
        Icon::Variation(VariationIcon::NeutralHigh | VariationIcon::NeutralLow) => {
            (ICON_NEUTRAL, false)
        }
        Icon::Assurance(AssuranceIcon::Pass) => (ICON_IMPROVEMENT, false),
        Icon::Assurance(AssuranceIcon::Fail) => (ICON_CONCERN, false),
        Icon::Assurance(AssuranceIcon::Inconsistent) => (ICON_COMMON, false),
        Icon::NoTarget => (ICON_COMMON, true),
    };
    let h = ICON_HISTORY;
    let inside = match icon {
        Icon::Variation(VariationIcon::CommonCause) => {
            run_chart([195.0, 233.0, 153.5, 221.5, 206.5], [ICON_COMMON; 5])
        }
        Icon::Variation(v @ (VariationIcon::ImprovementHigh | VariationIcon::ConcernHigh)) => {
            let c = if v == VariationIcon::ImprovementHigh {
                ICON_IMPROVEMENT
            } else {
                ICON_CONCERN
            };
            html! {
                (run_chart([210.5, 229.0, 210.5, 165.0, 180.0], [h, h, h, c, c]))
                (letter("H", 106.0, 172.0, c))
            }
        }
        Icon::Variation(v @ (VariationIcon::ImprovementLow | VariationIcon::ConcernLow)) => {
            let c = if v == VariationIcon::ImprovementLow {
                ICON_IMPROVEMENT
            } else {
                ICON_CONCERN
            };
            html! {
                (run_chart([168.5, 150.0, 168.5, 214.0, 199.0], [h, h, h, c, c]))
                (letter("L", 106.0, 292.0, c))
            }
        }
        Icon::Variation(VariationIcon::NeutralHigh) => {
            html! { path d=(ARROW_UP) fill=(ICON_NEUTRAL) {} }
        }
        Icon::Variation(VariationIcon::NeutralLow) => {
            html! { path d=(ARROW_DOWN) fill=(ICON_NEUTRAL) {} }
        }
        Icon::Assurance(a) => {
            let (text, text_colour, target_y, x1, x2) = match a {
                AssuranceIcon::Pass => ("P", ICON_IMPROVEMENT, 257.5, 55.5, 323.8),
                AssuranceIcon::Fail => ("F", ICON_CONCERN, 185.5, 38.5, 340.9),
                AssuranceIcon::Inconsistent => ("?", ICON_HISTORY, 222.5, 38.5, 340.9),
            };
            html! {
                path d=(PROCESS_LINE) fill="none" stroke=(h) stroke-width="10.67" {}
                line x1=(x1) y1=(target_y) x2=(x2) y2=(target_y) stroke=(ring)
                    stroke-width="8.67" stroke-dasharray="26 8.67" {}
                (letter(text, 155.85, 158.0, text_colour))
            }
        }
        Icon::NoTarget => html! {},
    };
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 378 378" width=(size) height=(size)
            role="img" aria-label=(icon.title()) class={ "mdc-icon mdc-" (icon.name()) } {
            title { (icon.title()) }
            circle cx="189" cy="189" r="151" fill="#FFFFFF" stroke=(ring) stroke-width="20"
                stroke-dasharray=[dashed_ring.then_some("60 20")] {}
            (inside)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden files: the exact SVG text of each icon, so a change to a drawing is a visible
    /// diff in review. `BRIGHT_BLESS=1` rewrites them after an intended change.
    #[test]
    fn every_icon_matches_its_golden_svg() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/icons");
        let bless = std::env::var_os("BRIGHT_BLESS").is_some();
        for icon in Icon::ALL {
            let svg = format!("{}\n", icon_svg(icon, 64).into_string());
            let path = dir.join(format!("{}.svg", icon.name()));
            if bless {
                std::fs::create_dir_all(&dir).expect("creates");
                std::fs::write(&path, &svg).expect("writes");
            }
            let golden = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (BRIGHT_BLESS=1 writes it)", path.display()));
            assert_eq!(
                svg,
                golden,
                "{} differs from {}",
                icon.name(),
                path.display()
            );
        }
    }

    #[test]
    fn icons_say_what_they_mean_without_colour() {
        let names: std::collections::BTreeSet<_> = Icon::ALL.iter().map(|i| i.name()).collect();
        assert_eq!(names.len(), 11, "each icon has its own name");
        for icon in Icon::ALL {
            let svg = icon_svg(icon, 50).into_string();
            assert!(svg.starts_with("<svg "), "{svg}");
            assert!(svg.contains(&format!("<title>{}</title>", icon.title())));
            assert!(svg.contains(r#"role="img""#));
            // Well formed: every element that opens is closed.
            for element in ["circle", "line", "path", "text", "title", "svg"] {
                assert_eq!(
                    svg.matches(&format!("<{element} ")).count()
                        + svg.matches(&format!("<{element}>")).count(),
                    svg.matches(&format!("</{element}>")).count(),
                    "{}: <{element}> left open",
                    icon.name()
                );
            }
            let letter = match icon {
                Icon::Variation(VariationIcon::ImprovementHigh | VariationIcon::ConcernHigh) => {
                    Some(">H</text>")
                }
                Icon::Variation(VariationIcon::ImprovementLow | VariationIcon::ConcernLow) => {
                    Some(">L</text>")
                }
                Icon::Assurance(AssuranceIcon::Pass) => Some(">P</text>"),
                Icon::Assurance(AssuranceIcon::Fail) => Some(">F</text>"),
                Icon::Assurance(AssuranceIcon::Inconsistent) => Some(">?</text>"),
                _ => None,
            };
            assert_eq!(letter.is_some(), svg.contains("</text>"), "{svg}");
            if let Some(letter) = letter {
                assert!(svg.contains(letter), "{}: {svg}", icon.name());
            }
        }
        // Improvement and concern differ in colour (and words) only; the letter tells high
        // from low.
        let shape = |icon: Icon, colour: &str| {
            icon_svg(icon, 50)
                .into_string()
                .replace(icon.title(), "")
                .replace(icon.name(), "")
                .replace(colour, "C")
        };
        for (improving, concerning) in [
            (VariationIcon::ImprovementHigh, VariationIcon::ConcernHigh),
            (VariationIcon::ImprovementLow, VariationIcon::ConcernLow),
        ] {
            assert_eq!(
                shape(Icon::Variation(improving), ICON_IMPROVEMENT),
                shape(Icon::Variation(concerning), ICON_CONCERN)
            );
        }
    }
}
